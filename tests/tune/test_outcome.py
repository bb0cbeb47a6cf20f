"""Every way a trial can end, classified without training: state, counted, fail reason, message,
and what the worker does next."""

import optuna
import pytest
import torch
from optuna.trial import TrialState

from bench.errors import CheckpointError, ConfigError, DataError, MemoryLimitError, NonFiniteLossError
from bench.tune.outcome import LeaseLostError, Outcome, Then, classify
from bench.utils.signals import Interrupted

ROW = {"metrics": {"miou": 0.625}, "cost": {"step_time_ms": 12.5, "peak_mem_mb": 300.0}, "config_hash": "abc"}


def _summary(o: Outcome) -> tuple:
    return o.state, o.counted, o.fail_reason, o.message, o.then


def test_a_completed_trial_records_its_value_cost_and_hash():
    o = classify(ROW)
    assert _summary(o) == (TrialState.COMPLETE, True, None, None, Then.NEXT)
    assert o.value == 0.625
    assert o.user_attrs() == {"step_time_ms": 12.5, "peak_mem_mb": 300.0, "config_hash": "abc"}


def test_a_pruned_trial_counts_and_says_why():
    why = "pruned at step 4 (hold-out mIoU 10.00)"
    o = classify(optuna.TrialPruned(why))
    assert _summary(o) == (TrialState.PRUNED, True, None, why, Then.NEXT)
    assert o.user_attrs() == {"pruned": why}
    assert o.value is None


def test_a_diverged_trial_fails_and_counts():
    """NaN/inf comes from the sampled values: a result of the search, so it uses up budget."""
    e = NonFiniteLossError(7, "kd")
    o = classify(e)
    assert _summary(o) == (TrialState.FAIL, True, "nonfinite", str(e), Then.NEXT)
    assert o.user_attrs() == {"fail_reason": "nonfinite", "error": str(e)}


def test_out_of_memory_fails_uncounted_with_the_first_line():
    first = "CUDA out of memory. Tried to allocate 2 GiB"
    o = classify(torch.OutOfMemoryError(f"{first}\nmore detail"))
    assert _summary(o) == (TrialState.FAIL, False, "oom", first, Then.NEXT)
    assert classify(torch.OutOfMemoryError()).message == ""  # no message: still classified


def test_a_memory_limit_stops_the_study_naming_the_term():
    """The method's setting: every trial would stop there, so the study stops (once) instead of
    failing trial after trial; MemoryLimitError is a ConfigError but must not be filed as invalid."""
    e = MemoryLimitError("term 'fault' needs about 9 MB ... above method.memory_limit_mb=1", term="fault")
    o = classify(e)
    assert _summary(o) == (TrialState.FAIL, False, "memory_limit", str(e), Then.STOP_STUDY)
    assert "term 'fault'" in o.user_attrs()["error"]


def test_an_invalid_sampled_config_fails_uncounted():
    why = "schedule shape 'zigzag'; valid: constant, linear"
    o = classify(ConfigError(why))
    assert _summary(o) == (TrialState.FAIL, False, "invalid", why, Then.NEXT)


def test_a_lost_lease_is_dropped_not_recorded():
    o = classify(LeaseLostError("failed as stale by another worker at step 3"))
    assert o.then is Then.DROP and not o.counted
    assert o.message == "failed as stale by another worker at step 3"


@pytest.mark.parametrize("error", [KeyboardInterrupt("interrupted at step 3"), Interrupted(15)])
def test_an_interrupt_fails_uncounted_and_is_re_raised(error):
    o = classify(error)
    assert _summary(o) == (TrialState.FAIL, False, "interrupted", None, Then.RERAISE)
    assert o.user_attrs() == {"fail_reason": "interrupted"}  # no error text: not the trial's fault


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RuntimeError("boom"), "RuntimeError: boom"),
        (ValueError(), "ValueError: "),
        (DataError("sample 3 is corrupt"), "DataError: sample 3 is corrupt"),
        (CheckpointError("bad file"), "CheckpointError: bad file"),
    ],
)
def test_any_other_exception_fails_uncounted_and_the_sweep_goes_on(error, message):
    o = classify(error)
    assert _summary(o) == (TrialState.FAIL, False, "error", message, Then.NEXT)


def test_what_is_not_a_trial_outcome_is_refused():
    with pytest.raises(TypeError, match="SystemExit"):
        classify(SystemExit(1))
