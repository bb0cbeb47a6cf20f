"""Common random numbers: trial k samples from (sampler seed, k) whatever the workers, timing or failures."""

import contextlib
import threading

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from bench.config.compose import load_config
from bench.config.schema import TuneConfig
from bench.tune import study as st
from bench.tune.runner import make_sampler
from bench.tune.sampling import SlotSampler
from bench.tune.space import load_space
from bench.utils.runtime import derive_seed

from ..conftest import TINY

DIST = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "wd": FloatDistribution(0.0, 1.0),
    "warmup": IntDistribution(0, 50),
    "t": CategoricalDistribution([1.0, 2.0, 4.0]),
}
DEFAULT = {"lr": 0.01, "wd": 0.5, "warmup": 0, "t": 1.0}


def _study(seed: int = 0) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(DEFAULT, user_attrs={"literature_default": True})
    study.sampler = SlotSampler(lambda s: optuna.samplers.TPESampler(seed=s), seed)
    return study


def _tune(workers: int, budget: int, fail: dict[int, str] | None = None) -> optuna.Study:
    """The sweep worker's claim → check → run → tell loop on ``workers`` threads, all asking at once."""
    study, tune, fail = _study(), TuneConfig(trials=budget), fail or {}
    barrier = threading.Barrier(workers)

    def work() -> None:
        try:
            while not st.budget_met(study, tune) and st.budget_left(study, tune, 0.0):
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=2)  # every worker asks at the same moment
                trial = study.ask(DIST)
                if st.over_budget(study, tune, trial.number):
                    trial.set_user_attr("fail_reason", "over_budget")
                    study.tell(trial, state=TrialState.FAIL)
                    break
                if trial.number in fail:
                    trial.set_user_attr("fail_reason", fail[trial.number])
                    study.tell(trial, state=TrialState.FAIL)
                    st.enqueue_replacement(study, trial.number)
                    continue
                study.tell(trial, trial.params["wd"])
        finally:
            barrier.abort()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return study


def _by_slot(study: optuna.Study) -> list[dict]:
    return [t.params for t in st.counted_by_slot(study)]


def test_one_and_three_workers_sample_the_same_start_up_trials():
    one, three = _tune(1, 8), _tune(3, 8)  # 8 < TPE's 10 start-up trials
    assert len(_by_slot(one)) == len(_by_slot(three)) == 8
    assert _by_slot(one) == _by_slot(three)
    assert _by_slot(one)[0] == DEFAULT  # slot 0 is the literature default
    assert len({t["lr"] for t in _by_slot(one)}) == 8


def test_fault_concurrent_asks_shared_a_seed_and_now_never_do():
    # As it was: the seed came from (sampler seed, trials read before ask, worker index); two
    # processes started by hand (worker index 0) that read the same count sampled the same config.
    old = []
    for _ in range(2):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=derive_seed(0, 5, 0)))
        old.append(study.ask(DIST).params)
    assert old[0] == old[1]
    # Now: concurrent asks get distinct trial numbers, hence distinct slots and seeds.
    study = _study()
    barrier, params = threading.Barrier(4), []

    def ask() -> None:
        barrier.wait(timeout=5)
        params.append(study.ask(DIST).params)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t.user_attrs["slot"] for t in study.trials) == [0, 1, 2, 3]
    assert len({p["lr"] for p in params}) == 4


def test_a_replaced_trial_shifts_no_other_slot():
    clean = _by_slot(_tune(1, 6))
    oom = _tune(1, 6, fail={2: "oom", 4: "interrupted"})
    replaced = _by_slot(oom)
    assert len(replaced) == 6 and st.tally(oom).uncounted_failures == 2
    # slot 2 failed for a reason that may lie in its configuration: a new draw for it (attempt 1) ...
    assert replaced[2] != clean[2]
    # ... slot 3 (trial 4) was interrupted: the replacement re-runs the same configuration; the rest
    # are untouched although their trial numbers moved.
    assert replaced[:2] == clean[:2] and replaced[3:] == clean[3:]
    replacements = [t for t in oom.trials if "replaces" in t.user_attrs]
    assert [
        (t.user_attrs["replaces"], t.user_attrs["slot"], t.user_attrs["attempt"]) for t in replacements
    ] == [
        (2, 2, 1),
        (4, 3, 0),
    ]


def test_the_literature_default_is_re_enqueued_until_it_counts():
    study = _tune(1, 4, fail={0: "interrupted"})
    default = st.literature_default(study)
    assert default is not None and default.params == DEFAULT and default.number == 1
    assert study.trials[1].user_attrs["replaces"] == 0
    assert st.counted_by_slot(study)[0].params == DEFAULT


def test_a_duplicate_replacement_never_trains():
    study = _study()
    tune = TuneConfig(trials=3)
    trial = study.ask(DIST)
    trial.set_user_attr("fail_reason", "error")
    study.tell(trial, state=TrialState.FAIL)
    # two processes both enqueue the replacement of trial 0 (a race the storage cannot exclude)
    assert st.enqueue_replacement(study, 0) and st.enqueue_replacement(study, 0)
    first, second = study.ask(DIST), study.ask(DIST)
    assert not st.over_budget(study, tune, first.number)
    assert st.over_budget(study, tune, second.number)  # slot 0 is taken by the first


def test_shared_dimensions_are_identical_across_methods():
    """Baseline and kd tune the same shared space first: their start-up trials agree on it."""
    sampled = {}
    for method in ("baseline", "kd"):
        cfg = load_config([*TINY, f"method={method}"])
        space = load_space(cfg)
        study = optuna.create_study(direction="maximize")
        study.sampler = SlotSampler(lambda s, cfg=cfg: make_sampler(cfg, s), cfg.tune.sampler_seed)
        trials = [study.ask(space.distributions) for _ in range(4)]
        for t in trials:
            study.tell(t, 0.5)
        sampled[method] = [{k: t.params[k] for k in space.shared} for t in trials]
    assert sampled["baseline"] == sampled["kd"]
