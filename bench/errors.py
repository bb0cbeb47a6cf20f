"""User-facing errors.

A :class:`BenchError` is a mistake the user can fix (a bad name, a missing file, a wrong value). The
command-line entry points print its message without a traceback; everything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class BenchError(Exception):
    """An error caused by the user's input; the message names the cause and the fix."""


class ConfigError(BenchError):
    """A config value is missing, misspelled, of the wrong type or inconsistent."""


class DataError(BenchError):
    """A dataset root, file or sample is missing or corrupt."""


class CheckpointError(BenchError):
    """A checkpoint is missing or does not match the model it should be loaded into."""


class NonFiniteLossError(BenchError):
    """The training loss became NaN or infinite."""

    def __init__(self, step: int, term: str) -> None:
        super().__init__(
            f"loss term '{term}' became NaN/inf at step {step}; lower the learning rate or the term's "
            "weight, or enable gradient clipping (train.grad_clip=...)"
        )
        self.step = step
        self.term = term


class MemoryLimitError(ConfigError):
    """A loss term's estimated memory exceeds ``method.memory_limit_mb`` (the method's setting)."""

    def __init__(self, message: str, term: str) -> None:
        super().__init__(message)
        self.term = term
