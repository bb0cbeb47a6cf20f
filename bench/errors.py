"""User-facing errors.

A :class:`BenchError` is a mistake the user can fix (a bad name, a missing file, a wrong value). The
command-line entry points print its message without a traceback; everything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path


class BenchError(Exception):
    """An error caused by the user's input; the message names the cause and the fix."""

    def __init__(self, *args: object) -> None:
        # A DataLoader worker re-raises the error in the main process as
        # ``type("Caught <Name> in DataLoader worker process N.\nOriginal Traceback ...: <message>")``;
        # keep the original message, so the user reads the same one line as with num_workers=0.
        if len(args) == 1 and isinstance(args[0], str) and " in DataLoader worker process " in args[0]:
            cls = type(self)
            marker = f"{cls.__module__}.{cls.__qualname__}: "
            if marker in args[0]:
                args = (args[0].rsplit(marker, 1)[1].rstrip("\n"),)
        super().__init__(*args)


class ConfigError(BenchError):
    """A config value is missing, misspelled, of the wrong type or inconsistent."""


class UnavailableError(ConfigError):
    """Something every run needs cannot be had here (pretrained weights offline, a weights file
    missing): not the sampled values' fault, so a sweep stops rather than trying other values."""


class NoCompletedTrialError(ConfigError):
    """A study has no completed trial yet (a final or a report has nothing to take from it)."""


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


# An output folder or file that cannot be written: the user's to fix (space, permissions, a path).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR})


def unwritable_message(e: OSError, path: str | Path | None = None) -> str:
    """One line for an output folder or file that cannot be written (read-only, full, no permission);
    ``path``: the folder a write check failed on (else the error's own file)."""
    where = path or e.filename or "the output folder"
    full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
    verb = "write to" if path is not None or full else "access"
    why = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "it is on a read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }.get(e.errno or 0, e.strerror or type(e).__name__)
    return (
        f"cannot {verb} {where}: {why}; free space or fix its permissions, or write elsewhere "
        "(output_dir=, teachers_dir=, tune.studies_dir=, tune.trials_dir=, tune.finals_dir=, report --out)"
    )
