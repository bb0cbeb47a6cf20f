"""Which training steps log, validate and checkpoint: a pure function of the step and ``train.*``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from bench.config.schema import TrainConfig


class Due(NamedTuple):
    """What the loop does after a step (``step`` counts completed steps); a tuple, built every step."""

    log: bool  # read the losses (the loop's only host sync), record history, call ``on_log``
    validate: bool  # intermediate validation (never at the end: the final evaluation is the result)
    checkpoint: bool  # save a checkpoint (always at the end, so a crash in evaluation loses no training)
    final: bool  # the run's last step


@dataclass(frozen=True)
class Schedule:
    """The loop's schedule: every ``log_interval`` steps a log, every ``val_interval`` a validation,
    every ``checkpoint_interval`` a checkpoint (0 = none in between); the last step logs and saves."""

    iterations: int
    log_interval: int
    val_interval: int = 0
    checkpoint_interval: int = 0

    @classmethod
    def of(cls, train: TrainConfig) -> Schedule:
        return cls(train.iterations, train.log_interval, train.val_interval, train.checkpoint_interval)

    def at(self, step: int) -> Due:
        final = step == self.iterations
        return Due(
            log=step % self.log_interval == 0 or final,
            validate=bool(self.val_interval) and step % self.val_interval == 0 and not final,
            checkpoint=(bool(self.checkpoint_interval) and step % self.checkpoint_interval == 0) or final,
            final=final,
        )
