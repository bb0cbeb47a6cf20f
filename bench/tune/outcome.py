"""How a trial ended, from its result row or its exception: what the study records and what the
worker does next. A pure function, so every case is unit-tested; counting rules live in
:mod:`bench.tune.study` (``COUNTED_FAILURES``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from bench.errors import (
    DISK_ERRNOS,
    CheckpointError,
    ConfigError,
    DataError,
    MemoryLimitError,
    NonFiniteLossError,
    UnavailableError,
    unwritable_message,
)
from bench.tune.study import COUNTED_FAILURES, USER_ERROR

# A user's mistake that every trial would hit (data, a checkpoint, weights, a full or read-only disk):
# the study stops at once with the one-line cause; the trial is replaced by the same configuration on
# the rerun after the fix, and never counts against tune.max_failed_trials.
USER_ERRORS = (DataError, CheckpointError, UnavailableError)


class LeaseLostError(RuntimeError):
    """Another worker failed this trial as stale (its worker was silent past the grace)."""


class Then(enum.Enum):
    """What the worker does once the outcome is recorded."""

    NEXT = "next"  # go on with the next trial
    STOP_STUDY = "stop_study"  # stop the study: every trial would end the same way (the method's setting)
    RERAISE = "reraise"  # re-raise the exception: the worker was interrupted (Ctrl-C, SIGTERM)
    DROP = "drop"  # record nothing: another worker already failed the trial as stale


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    fail_reason: str | None = None
    message: str | None = None  # why it failed or was pruned, one line where the cause allows
    value: float | None = None  # hold-out mIoU (%) of a completed trial
    then: Then = Then.NEXT
    result: dict[str, Any] = field(default_factory=dict)  # a completed trial's cost and config hash

    @property
    def counted(self) -> bool:
        """Whether the trial counts toward the budget (otherwise it is replaced, or dropped)."""
        if self.then is Then.DROP:
            return False
        return self.state in (TrialState.COMPLETE, TrialState.PRUNED) or self.fail_reason in COUNTED_FAILURES

    def user_attrs(self) -> dict[str, Any]:
        """The trial's user attributes besides its cost (``train_seconds``, ``wall_seconds``)."""
        if self.state == TrialState.PRUNED:
            return {"pruned": self.message}
        if self.state == TrialState.COMPLETE:
            return dict(self.result)
        attrs: dict[str, Any] = {"fail_reason": self.fail_reason}
        if self.message is not None:
            attrs["error"] = self.message
        return attrs


def classify(result: dict[str, Any] | Exception | KeyboardInterrupt) -> Outcome:
    """The outcome of a trial that returned its result row, or raised ``result``."""
    if not isinstance(result, BaseException):
        return Outcome(
            TrialState.COMPLETE,
            value=result["metrics"]["miou"],
            result={
                "step_time_ms": result["cost"]["step_time_ms"],
                "peak_mem_mb": result["cost"]["peak_mem_mb"],
                "config_hash": result["config_hash"],
            },
        )
    e = result
    fail = TrialState.FAIL
    if isinstance(e, optuna.TrialPruned):
        return Outcome(TrialState.PRUNED, message=str(e))
    if isinstance(e, NonFiniteLossError):  # the sampled values diverge: a counted result
        return Outcome(fail, "nonfinite", str(e))
    if isinstance(e, torch.OutOfMemoryError):
        return Outcome(fail, "oom", (str(e).splitlines() or [""])[0])
    if isinstance(e, USER_ERRORS) or (isinstance(e, OSError) and e.errno in DISK_ERRNOS):
        message = unwritable_message(e) if isinstance(e, OSError) else str(e)
        return Outcome(fail, USER_ERROR, message, then=Then.STOP_STUDY)
    if isinstance(e, MemoryLimitError):
        return Outcome(fail, "memory_limit", str(e), then=Then.STOP_STUDY)
    if isinstance(e, ConfigError):
        return Outcome(fail, "invalid", str(e))
    if isinstance(e, LeaseLostError):
        return Outcome(fail, "stale", str(e), then=Then.DROP)
    if isinstance(e, KeyboardInterrupt):
        return Outcome(fail, "interrupted", then=Then.RERAISE)
    if isinstance(e, Exception):  # a crashing trial must not end the sweep
        return Outcome(fail, "error", f"{type(e).__name__}: {e}")
    raise TypeError(f"not a trial outcome: {type(e).__name__}")
