"""Exact budgets: the rank check never lets concurrent workers overshoot."""

import contextlib
import datetime
import threading

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from bench.config.schema import TuneConfig
from bench.tune import study as st

DIST = {"x": FloatDistribution(0, 1)}


def _worker(study: optuna.Study, tune: TuneConfig, barrier: threading.Barrier, fail_first: set[int]) -> None:
    """The claim → rank check → run → tell loop of a sweep worker, with a trivial objective."""
    while not st.budget_met(study, tune):
        if not st.budget_left(study, tune, 0.0):
            break
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)  # maximise contention: every worker claims at the same moment
        trial = study.ask(DIST)
        if st.over_budget(study, tune, trial.number):
            trial.set_user_attr("fail_reason", "over_budget")
            study.tell(trial, state=TrialState.FAIL)
            break
        if trial.number in fail_first:  # an OOM-like crash: not counted, must be replaced
            trial.set_user_attr("fail_reason", "oom")
            study.tell(trial, state=TrialState.FAIL)
            st.enqueue_replacement(study, trial.number)  # as the sweep's worker does
            continue
        study.tell(trial, trial.params["x"])


def _run(workers: int, budget: int, fail: set[int] = frozenset(), storage=None) -> optuna.Study:
    study = optuna.create_study(storage=storage, direction="maximize")
    tune = TuneConfig(trials=budget)
    barrier = threading.Barrier(workers, action=None)

    def target():
        try:
            _worker(study, tune, barrier, set(fail))
        finally:
            barrier.abort()  # release the others when this worker stops

    threads = [threading.Thread(target=target) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return study


def test_concurrent_claims_never_overshoot():
    for workers, budget in ((4, 10), (3, 7), (8, 5)):
        study = _run(workers, budget)
        assert len(st.tally(study).counted) == budget
        assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)


def test_uncounted_failures_are_replaced():
    for workers in (1, 3):
        study = _run(workers, 5, fail={1, 2})
        t = st.tally(study)
        assert len(t.counted) == 5 and t.uncounted_failures == 2
        key = st.slots(study.trials)
        assert sorted(key[x.number][0] for x in t.counted) == [0, 1, 2, 3, 4]  # one counted trial per slot


def test_counting_rules():
    study = optuna.create_study()
    for state, reason in [
        (TrialState.COMPLETE, None),
        (TrialState.PRUNED, None),
        (TrialState.FAIL, "nonfinite"),
        (TrialState.FAIL, "oom"),
        (TrialState.FAIL, "interrupted"),
    ]:
        trial = study.ask(DIST)
        if reason:
            trial.set_user_attr("fail_reason", reason)
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    t = st.tally(study)
    assert [x.number for x in t.counted] == [0, 1, 2] and t.uncounted_failures == 2


def test_time_budget_counts_training_seconds():
    study = optuna.create_study()
    tune = TuneConfig(budget="time", seconds=10.0)
    for seconds in (4.0, 5.0):
        trial = study.ask(DIST)
        trial.set_user_attr("train_seconds", seconds)
        study.tell(trial, 0.1)
    assert st.budget_left(study, tune, 0.0) and not st.budget_met(study, tune)
    trial = study.ask(DIST)
    trial.set_user_attr("train_seconds", 2.0)
    study.tell(trial, 0.1)
    assert st.budget_met(study, tune) and st.tally(study).seconds == 11.0


def test_seconds_tolerance_is_one_trial_per_concurrent_worker():
    t0 = datetime.datetime(2026, 1, 1)
    study = optuna.create_study()
    # three trials, at most two at once; the longest trained 95 s
    for start, end, seconds in ((0, 100, 90.0), (50, 150, 95.0), (120, 200, 70.0)):
        study.add_trial(
            optuna.trial.FrozenTrial(
                number=0,
                state=TrialState.COMPLETE,
                value=0.5,
                values=None,
                datetime_start=t0 + datetime.timedelta(seconds=start),
                datetime_complete=t0 + datetime.timedelta(seconds=end),
                params={"x": 0.5},
                distributions=DIST,
                user_attrs={"train_seconds": seconds},
                system_attrs={},
                intermediate_values={},
                trial_id=0,
            )
        )
    assert st.seconds_tolerance(study) == 2 * 95.0
