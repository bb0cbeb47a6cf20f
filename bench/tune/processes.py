"""Worker processes of a sweep on one machine, and what SIGINT / SIGTERM do to them.

- SIGTERM (what Slurm and Kubernetes send) raises :class:`Interrupted` in the main thread, like
  Ctrl-C raises ``KeyboardInterrupt``; the entry points exit with 128 + the signal (130, 143).
- The sweep's parent, interrupted, stops every worker (SIGTERM, then SIGKILL after a timeout),
  fails the trials they were running (``fail_reason=interrupted``, not counted), removes their
  checkpoints, and re-raises. Workers die with their parent even when it is killed with -9
  (``PR_SET_PDEATHSIG``), so nothing is left orphaned.
- A worker that stops with an error sends its message to the parent, which names it (and a worker
  killed by a signal, e.g. the out-of-memory killer) instead of pointing at output that is not there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger("bench")

STOP_TIMEOUT = 60.0  # seconds a stopped worker gets to mark its trial before SIGKILL


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


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    index: int
    process: mp.process.BaseProcess
    errors: Connection

    def describe(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (SIGKILL: e.g. the out-of-memory killer or `kill -9`)" if -code == signal.SIGKILL else ""
            return f"worker {self.index} (pid {self.process.pid}) was killed by {name}{hint}"
        message = None
        with contextlib.suppress(EOFError, OSError):
            if self.errors.poll():
                message = self.errors.recv()
        return f"worker {self.index} (pid {self.process.pid}) exited with status {code}" + (
            f": {message}" if message else " without a message"
        )


def _child(target: Callable[..., None], args: tuple, errors: Connection) -> None:
    die_with_parent()
    raise_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from bench.errors import BenchError

    try:
        target(*args)
    except KeyboardInterrupt as e:
        errors.send(f"interrupted ({e or 'Ctrl-C'})")
        sys.exit(exit_status(e))  # 130 / 143: the parent stops the sweep as interrupted
    except BenchError as e:
        errors.send(str(e))
        sys.exit(2)
    except BaseException as e:
        errors.send(f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}")
        raise


def run_workers(
    target: Callable[..., None],
    args_per_worker: Sequence[tuple],
    on_stopped: Callable[[set[int]], None],
    context: mp.context.BaseContext | None = None,
) -> None:
    """Run ``target(*args)`` in one process per entry (``context``, default spawn) and wait for all
    (:func:`start_workers`, then :func:`wait_workers`)."""
    wait_workers(start_workers(target, args_per_worker, context), on_stopped)


def start_workers(
    target: Callable[..., None],
    args_per_worker: Sequence[tuple],
    context: mp.context.BaseContext | None = None,
) -> list[Worker]:
    """Start ``target(*args)`` in one process per entry (``context``, default spawn); the caller may
    work meanwhile, and must then call :func:`wait_workers` (or :func:`stop_workers` on its way out)."""
    ctx = context or mp.get_context("spawn")
    workers = []
    for i, args in enumerate(args_per_worker):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(target, args, send), name=f"sweep-worker-{i}")
        proc.start()
        send.close()
        workers.append(Worker(i, proc, receive))
    return workers


def wait_workers(workers: Sequence[Worker], on_stopped: Callable[[set[int]], None]) -> None:
    """Wait for every worker of :func:`start_workers`.

    A worker that fails with a user error (exit 2) stops the others: the error is the study's (a
    memory limit, a bad config) and would hit every worker; one interrupted by SIGINT/SIGTERM (exit
    130/143) stops the others too and the parent raises :class:`Interrupted` with that signal. One
    killed by a signal leaves the others
    running; its trial goes stale and is replaced. Interrupted, the parent stops all workers and calls
    ``on_stopped(pids)`` so their trials are marked. Raises :class:`~bench.errors.BenchError` naming
    each worker that failed.
    """
    from bench.errors import BenchError

    try:
        pending = {w.process.sentinel: w for w in workers}
        while pending:
            for sentinel in wait(list(pending)):
                worker = pending.pop(sentinel)
                worker.process.join()
                if worker.process.exitcode == 2:
                    stop_workers(workers, on_stopped)
                    raise BenchError(worker.describe())
                if worker.process.exitcode in INTERRUPTED:
                    # A worker stopped by SIGINT/SIGTERM (e.g. Ctrl-C to the terminal's process group,
                    # when the worker's exit is seen before the parent's own KeyboardInterrupt): the
                    # sweep is interrupted, with the worker's signal.
                    stop_workers(workers, on_stopped)
                    raise Interrupted(INTERRUPTED[worker.process.exitcode], worker.describe())
    except KeyboardInterrupt:
        stop_workers(workers, on_stopped)
        raise
    failed = [w.describe() for w in workers if w.process.exitcode != 0]
    if failed:
        on_stopped({w.process.pid for w in workers if w.process.pid is not None})
        raise BenchError("; ".join(failed) + ". Rerun the same command to resume the study")


def stop_workers(workers: Sequence[Worker], on_stopped: Callable[[set[int]], None]) -> None:
    """Stop the workers still running (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`), then call
    ``on_stopped(pids)``; a second Ctrl-C meanwhile is ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    try:
        with signals_deferred():
            _stop_all(workers, on_stopped)
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_all(workers: Sequence[Worker], on_stopped: Callable[[set[int]], None]) -> None:
    alive = [w for w in workers if w.process.is_alive()]
    if alive:
        log.warning("stopping %d sweep worker(s)", len(alive))
    for w in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.process.pid, signal.SIGTERM)
    for w in alive:
        w.process.join(STOP_TIMEOUT)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
    on_stopped({w.process.pid for w in workers if w.process.pid is not None})
