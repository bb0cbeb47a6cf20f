"""What every entry point and worker process sets up about signals and exit.

- SIGTERM (what Slurm and Kubernetes send) raises :class:`Interrupted` in the main thread, like
  Ctrl-C raises ``KeyboardInterrupt`` (:func:`raise_on_sigterm`); the entry points exit with
  128 + the signal (:func:`exit_status`: 130, 143).
- :func:`signals_deferred` holds SIGTERM while a few storage writes finish.
- :func:`die_with_parent`: a worker process gets SIGTERM when its parent dies, even by SIGKILL.
- :func:`skip_final_collection`: no last garbage collection at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import signal
import sys
from collections.abc import Iterator
from typing import Any


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, or SIGINT forwarded by a parent) turned into an exception."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def exit_status(error: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for signal N."""
    return 128 + getattr(error, "signum", signal.SIGINT)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Interrupted` in the main thread (call once at program start)."""

    def handler(signum: int, frame: Any) -> None:
        if _deferred is not None:
            _deferred.append(signum)
            return
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, handler)


_deferred: list[int] | None = None


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM while a few storage writes finish (e.g. telling Optuna how a trial ended)."""
    global _deferred
    outer = _deferred
    _deferred = [] if outer is None else outer
    try:
        yield
    finally:
        pending, _deferred = _deferred, outer
        if outer is None and pending:
            raise Interrupted(pending[0])


INTERRUPTED = {exit_status(Interrupted(sig)): sig for sig in (signal.SIGINT, signal.SIGTERM)}  # 130, 143


def skip_final_collection() -> None:
    """Leave out the interpreter's last garbage collection at exit: after torch, torchvision and timm
    are imported it walks every object they made, ≈1.2 s on the 2-core machine, paid by every entry
    point and sweep worker once its work is done. Objects are still released by reference counting;
    what is left in cycles goes with the process. Registered first, it runs after every library's own
    exit handlers (atexit runs them in reverse order), so their flushes and closes still happen."""
    atexit.register(gc.freeze)


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
