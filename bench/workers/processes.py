"""Worker processes of a sweep on one machine, and what SIGINT / SIGTERM do to them.

- The sweep's own process is worker 0 (:func:`run_workers`): its imports are paid and its studies
  open, so it trains at once; workers 1 … N-1 are spawned processes, started ahead where the command
  line says how many (:func:`standby_workers`: they import while the parent composes). A worker
  that fails with a user error or is stopped by a signal interrupts worker 0's work at once (a
  watching thread, :func:`work_beside`).
- SIGTERM raises :class:`~bench.utils.signals.Interrupted` in every worker's main thread, like
  Ctrl-C raises ``KeyboardInterrupt`` (:mod:`bench.utils.signals`).
- The sweep's parent, interrupted, stops every worker (SIGTERM, then SIGKILL after a timeout),
  fails the trials they were running (``fail_reason=interrupted``, not counted), removes their
  checkpoints, and re-raises. Workers die with their parent even when it is killed with -9
  (``PR_SET_PDEATHSIG``), so nothing is left orphaned.
- A worker that stops with an error sends its message to the parent, which names it (and a worker
  killed by a signal, e.g. the out-of-memory killer) instead of pointing at output that is not there.
"""

from __future__ import annotations

import _thread
import contextlib
import importlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from bench.config.overrides import Overrides
from bench.utils.signals import (
    INTERRUPTED,
    Interrupted,
    die_with_parent,
    exit_status,
    raise_on_sigterm,
    signals_deferred,
    skip_final_collection,
)

log = logging.getLogger("bench")
T = TypeVar("T")

STOP_TIMEOUT = 60.0  # seconds a stopped worker gets to mark its trial before SIGKILL


@dataclass
class Worker:
    index: int
    process: mp.process.BaseProcess
    errors: Connection
    message: str | None = None  # what the worker sent before it stopped (read once from ``errors``)
    tasks: Connection | None = None  # a standby worker's pipe for its work, until it is given

    def stops_the_others(self) -> BaseException | None:
        """What the parent raises when this worker has exited in a way that ends the whole run: a
        user error (exit 2) is the run's (a memory limit, a bad config) and would hit every worker;
        SIGINT/SIGTERM (exit 130/143, e.g. Ctrl-C to the terminal's process group, seen before the
        parent's own KeyboardInterrupt) interrupts the run with the worker's signal."""
        from bench.errors import BenchError

        code = self.process.exitcode
        if code == 2:
            return BenchError(self.describe())
        if code in INTERRUPTED:
            return Interrupted(INTERRUPTED[code], self.describe())
        return None

    def describe(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (SIGKILL: e.g. the out-of-memory killer or `kill -9`)" if -code == signal.SIGKILL else ""
            return f"worker {self.index} (pid {self.process.pid}) was killed by {name}{hint}"
        with contextlib.suppress(EOFError, OSError):
            if self.message is None and self.errors.poll():
                self.message = self.errors.recv()
        return f"worker {self.index} (pid {self.process.pid}) exited with status {code}" + (
            f": {self.message}" if self.message else " without a message"
        )


def _child(
    target: Callable[..., None] | None,
    args: tuple,
    errors: Connection,
    preload: Sequence[str] = (),
    tasks: Connection | None = None,
) -> None:
    """A worker process: ``target(*args)``, or (standby) import ``preload``, then take the target
    and its arguments from ``tasks`` (none: exit)."""
    skip_final_collection()
    die_with_parent()
    raise_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from bench.errors import BenchError

    try:
        if tasks is not None:
            for name in preload:
                importlib.import_module(name)
            try:
                target, args = tasks.recv()
            except EOFError:
                return  # dismissed: no work for this worker
        assert target is not None
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
    standby: Sequence[Worker] = (),
) -> None:
    """Run ``target(*args)`` once per entry: the first entry in this process (worker 0, whose imports
    are already paid, trains at once), the others in worker processes, then wait for all
    (:func:`work_beside`). A worker process costs its imports (≈5 s of CPU with torch, torchvision
    and timm): ``standby`` workers (:func:`standby_workers`), started before this process composed
    its configs, have paid them meanwhile and are used first (each once: a later call given the same
    list skips those that have had their work); the rest are spawned now."""
    own, *others = args_per_worker
    ready = [w for w in standby if w.tasks is not None][: len(others)]  # those not given work before
    for worker, args in zip(ready, others, strict=False):
        worker.tasks.send((target, args))
        worker.tasks.close()
        worker.tasks = None
    workers = ready + start_workers(target, others[len(ready) :], first_index=1 + len(ready))
    work_beside(workers, lambda: target(*own), on_stopped)


@contextlib.contextmanager
def standby_workers(n: int, preload: Sequence[str]) -> Iterator[list[Worker]]:
    """``n`` worker processes (numbered from 1) spawned now, before their work is known: each
    imports ``preload`` (module names) while this process composes and opens its studies, then
    waits for its work from :func:`run_workers`. Those given no work are stopped on the way out."""
    ctx = mp.get_context("spawn")
    workers = []
    for i in range(1, n + 1):
        receive, send = ctx.Pipe(duplex=False)
        task_receive, task_send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child, args=(None, (), send, tuple(preload), task_receive), name=f"sweep-worker-{i}"
        )
        proc.start()
        send.close()
        task_receive.close()
        workers.append(Worker(i, proc, receive, tasks=task_send))
    try:
        yield workers
    finally:
        dismiss(workers)


def requested_workers(overrides: Sequence[str]) -> int:
    """``tune.workers`` when the command line sets it for local workers (``make sweep WORKERS=N``,
    ``make final WORKERS=N``), else 1: worker processes to start before the config is composed. Only
    a head start: the composed config decides, and workers it needs beyond these are started then."""
    given = Overrides(overrides)
    if given.get("launcher.name", "local") != "local":
        return 1
    workers = given.get("tune.workers", 1)
    return workers if type(workers) is int and workers > 0 else 1


def dismiss(workers: Sequence[Worker]) -> None:
    """Stop the standby workers that were given no work (they hold nothing: SIGKILL)."""
    for w in workers:
        if w.tasks is not None:
            w.tasks.close()
            w.tasks = None
            w.process.kill()
            w.process.join()


def start_workers(
    target: Callable[..., None], args_per_worker: Sequence[tuple], first_index: int = 0
) -> list[Worker]:
    """Start ``target(*args)`` in one spawned process per entry (numbered from ``first_index`` in
    messages); the caller may work meanwhile (:func:`work_beside`), and must then call
    :func:`wait_workers` (or :func:`stop_workers` on its way out).

    Spawn, not fork: a process forked after torch has run a parallel region hangs in its first
    multi-threaded op (GNU OpenMP's thread pool does not survive fork)."""
    ctx = mp.get_context("spawn")
    workers = []
    for i, args in enumerate(args_per_worker, start=first_index):
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
    killed by a signal leaves the others running; its trial goes stale and is replaced. Interrupted,
    the parent stops all workers and calls ``on_stopped(pids)`` so their trials are marked. Raises
    :class:`~bench.errors.BenchError` naming each worker that failed.
    """
    from bench.errors import BenchError

    try:
        pending = {w.process.sentinel: w for w in workers}
        while pending:
            error = _run_ending_exit(pending, timeout=None)
            if error is not None:
                stop_workers(workers, on_stopped)
                raise error
    except KeyboardInterrupt:
        stop_workers(workers, on_stopped)
        raise
    failed = [w.describe() for w in workers if w.process.exitcode != 0]
    if failed:
        on_stopped({w.process.pid for w in workers if w.process.pid is not None})
        raise BenchError("; ".join(failed) + ". Rerun the same command to resume the study")


def _run_ending_exit(pending: dict[Any, Worker], timeout: float | None) -> BaseException | None:
    """Wait (up to ``timeout``; None: until one exits) for the workers in ``pending`` (by sentinel),
    join and drop each that exited, and return the error of the first whose exit ends the run
    (:meth:`Worker.stops_the_others`), if any."""
    for sentinel in wait(list(pending), timeout=timeout):
        worker = pending.pop(sentinel)
        worker.process.join()
        error = worker.stops_the_others()
        if error is not None:
            return error
    return None


def work_beside(workers: Sequence[Worker], own: Callable[[], T], on_stopped: Callable[[set[int]], None]) -> T:
    """Run ``own()`` in this process while ``workers`` (:func:`start_workers`) run, then wait for them
    (:func:`wait_workers`); returns what ``own()`` returns.

    A worker that ends the run (:meth:`Worker.stops_the_others`: a user error or a stop signal)
    interrupts ``own()`` at once, as SIGTERM would (its trial is failed as interrupted), the others
    are stopped and that worker's error is raised. ``own()`` failing or interrupted stops the workers
    (:func:`stop_workers`) and its error goes on.
    """
    watch = _Watch(workers)
    try:
        try:
            result = own()
        finally:
            watch.stop()  # an interrupt the watch asked for is raised here at the latest
        wait_workers(workers, on_stopped)
    except BaseException as e:
        stop_workers(workers, on_stopped)
        if watch.error is not None and isinstance(e, KeyboardInterrupt):
            raise watch.error from None
        raise
    return result


class _Watch:
    """Waits for workers in a thread; the first that ends the run interrupts the main thread.

    The interrupt is SIGTERM's handler when it is Python's (:func:`raise_on_sigterm`, which holds it
    while :func:`signals_deferred` finishes a storage write), else SIGINT's. It is asked for under a
    lock that :meth:`stop` takes, and :meth:`stop` then enters a Python function (``join``), where
    the main thread handles a pending interrupt: after :meth:`stop` returns none is left to arrive.
    """

    POLL = 0.2  # seconds between looks at the stop flag

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, args=(list(workers),), name="worker-watch", daemon=True
        )
        self._thread.start()

    def _run(self, workers: list[Worker]) -> None:
        pending = {w.process.sentinel: w for w in workers}
        while pending and not self._stopped:
            error = _run_ending_exit(pending, timeout=self.POLL)
            if error is None:
                continue
            with self._lock:
                if not self._stopped:
                    self.error = error
                    sigterm_handled = callable(signal.getsignal(signal.SIGTERM))
                    _thread.interrupt_main(signal.SIGTERM if sigterm_handled else signal.SIGINT)
            return

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._thread.join()


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
