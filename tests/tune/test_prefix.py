"""Budgets as prefixes: a study topped up to 30 trials holds the 20-trial comparison exactly.

The sweep's own machinery (study name and settings, slots, slot-seeded TPE, budget checks, the
top-up of discarded slots, the finals' summary) runs with a cheap deterministic objective in place
of training, so the test takes seconds.
"""

import math

import pytest
from optuna.trial import Trial, TrialState

from bench.config.compose import load_config
from bench.tune import study as st
from bench.tune.finals import study_summary
from bench.tune.runner import Sweep

from ..conftest import sweep_args

# what a comparison at one budget reads from a study (the trial number may differ; the slot may not)
COMPARED = (
    "best_slot",
    "best_params",
    "holdout_miou",
    "trials",
    "tune_seconds",
    "best_so_far",
    "holdout_values",
    "budget_met",
    "literature_default_counted",
)


class ToySweep(Sweep):
    """A sweep whose trials score a deterministic function of their parameters instantly."""

    def run_trial(self, trial: Trial) -> None:
        numbers = [float(v) for _, v in sorted(trial.params.items()) if isinstance(v, int | float)]
        value = 0.5 + 0.4 * math.sin(sum((i + 1.3) * v for i, v in enumerate(numbers)))
        attrs = {"train_seconds": 1.0 + 2 * value}
        self._finish(trial, TrialState.COMPLETE, attrs, value)


def _sweep(root, *overrides: str) -> ToySweep:
    sweep = ToySweep.open(sweep_args(root, None, "tune.sampler_seed=3", *overrides))
    sweep.run_worker()
    return sweep


def _at(sweep: Sweep, *overrides: str) -> dict:
    tune = load_config([*sweep.overrides, *overrides]).tune
    summary = study_summary(sweep.study, tune)
    return {k: summary[k] for k in COMPARED}


def _discard_one(sweep: Sweep) -> int:
    """What a second worker does when it claims a slot after the budget is met: discard it."""
    trial = sweep.study.ask(sweep.space.distributions)
    assert st.over_budget(sweep.study, sweep.cfg.tune, trial.number)
    sweep._finish(trial, TrialState.FAIL, {"fail_reason": st.DISCARDED})
    return trial.number


def test_a_topped_up_study_contains_the_smaller_budgets_comparison_exactly(tmp_path):
    twenty = _sweep(tmp_path / "a", "tune.trials=20")
    direct = _sweep(tmp_path / "b", "tune.trials=30")
    topped = _sweep(tmp_path / "c", "tune.trials=20")
    discarded = _discard_one(topped)  # slot 20, beyond the budget of 20
    assert st.slots(topped.study.trials)[discarded] == (20, 0)
    topped = _sweep(tmp_path / "c", "tune.trials=30")  # TRIALS=30 after TRIALS=20: the same study

    assert twenty.name == direct.name == topped.name  # no trial count in a study's name
    assert len(st.tally(topped.study).counted) == 30
    # the discarded slot was given back, not skipped: slots 0 … 29, each counted once
    assert [st.slots(topped.study.trials)[t.number][0] for t in st.counted_by_slot(topped.study)] == list(
        range(30)
    )
    # `make final` without TRIALS: the largest budget a sweep asked of the study, not the last one
    assert st.requested_budget(topped.study)["trials"] == 30
    _sweep(tmp_path / "c", "tune.trials=20")
    assert st.requested_budget(topped.study)["trials"] == 30
    at20 = _at(twenty, "tune.trials=20")
    assert at20["trials"] == 20 and at20["budget_met"] and at20["literature_default_counted"]
    assert _at(direct, "tune.trials=20") == at20 == _at(topped, "tune.trials=20")
    assert _at(direct, "tune.trials=30") == _at(topped, "tune.trials=30")
    assert _at(direct, "tune.trials=30")["trials"] == 30
    # TPE's own trials (after its 10 start-up trials) agree too, not only the random start-up
    assert [t.params for t in st.counted_by_slot(direct.study)] == [
        t.params for t in st.counted_by_slot(topped.study)
    ]
    # a budget the study has not reached yet is not met (and is flagged by the report)
    assert not _at(twenty, "tune.trials=25")["budget_met"]


def test_time_budgets_are_prefixes_by_cumulative_training_seconds(tmp_path):
    time = ("tune.budget=time",)
    short = _sweep(tmp_path / "a", *time, "tune.seconds=12")
    long = _sweep(tmp_path / "b", *time, "tune.seconds=30")
    assert short.name.endswith("/baseline/time") and short.name == long.name
    at12 = _at(short, *time, "tune.seconds=12")
    assert at12 == _at(long, *time, "tune.seconds=12") and at12["budget_met"]
    # the prefix stops at the first trial started with the budget spent: at most one trial over
    seconds = [1.0 + 2 * v for v in at12["holdout_values"]]
    assert sum(seconds[:-1]) < 12 <= sum(seconds)


def test_a_settings_change_is_still_refused_on_top_up(tmp_path):
    _sweep(tmp_path, "tune.trials=2")
    with pytest.raises(Exception, match="other settings"):
        _sweep(tmp_path, "tune.trials=4", "tune.sampler_seed=4")


def test_repeats_are_independent_studies_under_one_protocol(tmp_path):
    from bench.tune.finals import select_studies

    args = sweep_args(tmp_path, None, "tune.trials=3")
    sweeps = [ToySweep.open(st.repeat_overrides(args, r)) for r in range(3)]
    for sweep in sweeps:
        sweep.run_worker()
    names = [s.name for s in sweeps]
    assert names == [f"synthetic/deeplabv3_tiny/none/baseline/trials{t}" for t in ("", "/r1", "/r2")]
    cfgs = [s.cfg for s in sweeps]
    # repeat 0 keeps the configured seeds; each other repeat gets its own sampler and hold-out seeds
    assert (cfgs[0].tune.sampler_seed, cfgs[0].dataset.holdout_seed) == (0, 0)
    assert len({c.tune.sampler_seed for c in cfgs}) == len({c.dataset.holdout_seed for c in cfgs}) == 3
    # … the same for every method of the comparison (common random numbers within a repeat)
    kd = load_config(st.repeat_overrides([*args, "method=kd"], 2))
    assert (kd.tune.sampler_seed, kd.dataset.holdout_seed) == (
        cfgs[2].tune.sampler_seed,
        cfgs[2].dataset.holdout_seed,
    )
    # different slot seeds: the repeats sample different configurations after the default
    assert len({tuple(st.counted_by_slot(s.study)[1].params.values()) for s in sweeps}) == 3
    assert [s.study.user_attrs["settings"]["repeat"] for s in sweeps] == [0, 1, 2]
    # a top-up of one repeat stays in that repeat's study; finals find every repeat
    again = ToySweep.open(st.repeat_overrides([*args, "tune.trials=4"], 1))
    assert again.name == names[1]
    assert select_studies(load_config(args), again.study._storage, "baseline") == sorted(names)
