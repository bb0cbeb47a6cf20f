"""Re-scoring a study without pruning (issue 28 item 5): the pruned trials re-run to completion, the
best configuration and the tuning verdict shown both ways, on tiny synthetic studies."""

from dataclasses import replace

import pytest
from optuna.trial import TrialState

from bench.config.budget import Budget
from bench.rescore import main as rescore_main
from bench.results import read_row
from bench.tune import study as st
from bench.tune.rescore import RESCORED, completed_score, format_rescores, price, rescore_study
from bench.tune.runner import Sweep

from ..conftest import sweep_args


def _study(tmp_path, method, outcomes, teachers=None, *extra):
    """A study of ``method`` whose counted trials ended as ``outcomes`` (a hold-out mIoU in percent, the
    unit of a new study's values, or "pruned")."""
    trials = f"tune.trials={len(outcomes)}"
    sweep = Sweep.open(sweep_args(tmp_path, teachers, f"method={method}", trials, *extra))
    for outcome in outcomes:  # slot 0 is the enqueued literature default, as in a sweep
        trial = sweep.study.ask(sweep.space.distributions)
        if outcome == "pruned":
            trial.set_user_attr("pruned", "pruned at step 2")
            sweep.study.tell(trial, state=TrialState.PRUNED)
        else:
            trial.set_user_attr("train_seconds", 3.0)
            sweep.study.tell(trial, outcome)
    return sweep.study, sweep.cfg


class _Fake:
    """Scores a re-run trial from a table (trial number → mIoU %) and counts the runs."""

    def __init__(self, scores):
        self.scores, self.calls = scores, []

    def __call__(self, cfg, label):
        number = int(label.rsplit(" ", 1)[1])
        self.calls.append((number, cfg.output_dir))
        return self.scores[number]


def test_a_pruned_slow_starter_that_would_have_won_changes_the_best_and_the_verdict(tmp_path):
    base, cfg = _study(tmp_path / "a", "baseline", [30.0, 28.0, 25.0])
    # the slow starter: a study of its own (the re-scoring does not depend on the method; a KD study
    # would need a teacher trained on this tuning split), shown as "kd" in the verdict
    kd, _ = _study(tmp_path / "b", "baseline", [29.0, "pruned", "pruned"])
    assert price(kd, st.prefix(kd, Budget("trials", 3))) == (2, 6.0)  # two full trials of 3 s
    fake = _Fake({1: 34.0, 2: None})  # trial 2 diverges when completed
    kd_scored = replace(rescore_study(kd, cfg, train=fake), method="kd")
    base_scored = rescore_study(base, cfg, train=_Fake({}))
    assert [n for n, _ in fake.calls] == [1, 2]
    assert all("/rescore/trial_000" in out for _, out in fake.calls)  # not the trials' own folders
    assert kd_scored.best(True) == (0, 29.0) and kd_scored.best(False) == (1, 34.0) and kd_scored.changes
    assert not base_scored.changes
    text = format_rescores([base_scored, kd_scored])
    best = "best with pruning: trial 0 (29.00); without: trial 1 (34.00)"
    assert f"{best}: the best configuration CHANGES" in text
    assert "completed: diverged" in text
    verdict = "kd − baseline (repeat 0), best hold-out mIoU: -1.00 with pruning, +4.00 without"
    assert f"{verdict}: the tuning verdict CHANGES" in text
    # kept in the study: a second call re-runs nothing
    assert kd.user_attrs[RESCORED] == {"1": 34.0, "2": None}
    again = _Fake({})
    assert rescore_study(kd, cfg, train=again).best(False) == (1, 34.0) and again.calls == []
    assert price(kd, st.prefix(kd, Budget("trials", 3)))[0] == 0


def test_pruned_trials_that_stay_behind_leave_the_best_unchanged(tmp_path):
    kd, cfg = _study(tmp_path, "baseline", [31.0, "pruned", 20.0])
    scored = rescore_study(kd, cfg, train=_Fake({1: 25.0}))
    assert not scored.changes
    assert "the best configuration unchanged" in format_rescores([scored])


@pytest.mark.slow  # one real trial (~20 s on a loaded 2-core machine)
def test_a_real_pruned_trial_is_retrained_to_the_end_of_its_schedule(tmp_path):
    kd, cfg = _study(tmp_path, "baseline", [0.0, "pruned"], None, "tune.trial_iterations=4")
    scored = rescore_study(kd, cfg, train=completed_score)
    value = scored.rescored[1]
    assert value is not None and 0.0 <= value <= 100.0
    assert scored.best(False)[0] == (1 if value > 0 else 0)
    row = tmp_path / "trials" / kd.study_name / "rescore" / "trial_0001" / "result.json"
    assert read_row(row)["config"]["train"]["iterations"] == 4  # the study's tuning schedule


@pytest.mark.slow
def test_make_rescore_prices_first_and_prints_both_ways(tmp_path, capsys):
    _study(tmp_path, "baseline", [30.0, "pruned"])
    args = sweep_args(tmp_path, None)
    rescore_main(["--price", *args])
    out = capsys.readouterr().out
    assert "1 pruned trials to re-run to completion (about 3 s of training" in out
    assert "best with pruning" not in out  # --price stops before training
    rescore_main(args)
    out = capsys.readouterr().out
    assert "best with pruning: trial 0 (30.00)" in out


def test_a_study_of_fractions_is_read_in_percent(tmp_path):
    """A study made before values were percent holds fractions: its best and the re-scored trial
    (the trainer's percent) are compared in one unit."""
    study, cfg = _study(tmp_path, "baseline", [0.31, "pruned"])
    study.set_user_attr(st.VALUE_UNIT, "fraction")
    scored = rescore_study(study, cfg, train=_Fake({1: 33.0}))
    assert scored.best(True) == (0, 31.0) and scored.best(False) == (1, 33.0) and scored.changes
