"""Local worker processes: this process as worker 0, a failing worker cutting its work short, standby
workers that import before their work is known. The workers are real spawned processes."""

import os
import signal
import time
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.utils.signals import raise_on_sigterm, signals_deferred
from bench.workers.processes import (
    requested_workers,
    run_workers,
    standby_workers,
    start_workers,
    work_beside,
)

pytestmark = pytest.mark.slow  # spawned processes

NOTHING = lambda pids: None  # noqa: E731  (on_stopped: these workers leave nothing to clean up)


def _fail(message: str) -> None:
    raise BenchError(message)


def _write_pid(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def _until(seconds: float) -> str:
    """Worker 0's own work: busy for ``seconds`` unless interrupted."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.02)
    return "finished"


@pytest.fixture
def sigterm_raises():
    """SIGTERM raises in the main thread, as the entry points set it up (run_cli)."""
    previous = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_user_error_in_a_worker_cuts_worker_0s_work_short():
    """Worker 1 fails at once with a user error: worker 0 (this process, 120 s of work) is
    interrupted by the watch within seconds and the worker's message is the error raised."""
    started = time.monotonic()
    workers = start_workers(_fail, [("unknown dataset 'x'",)], first_index=1)
    with pytest.raises(BenchError, match=r"worker 1 \(pid \d+\) exited with status 2: unknown dataset 'x'"):
        work_beside(workers, lambda: _until(120), NOTHING)
    assert time.monotonic() - started < 60
    assert workers[0].process.exitcode == 2


def test_the_watch_waits_for_a_deferred_storage_write(sigterm_raises):
    """Under the CLI's SIGTERM handler the watch interrupts as SIGTERM, which waits while worker 0 is
    telling the storage how a trial ended (signals_deferred): that write is never cut in half."""
    workers = start_workers(_fail, [("memory limit",)], first_index=1)
    written = []

    def own() -> str:
        with signals_deferred():
            _until(6)  # the worker fails meanwhile: its interrupt waits for the block's end
            written.append("told")
        return _until(120)

    with pytest.raises(BenchError, match="memory limit"):
        work_beside(workers, own, NOTHING)
    assert written == ["told"]


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_by_a_signal_leaves_worker_0_working():
    """SIGKILL (the out-of-memory killer) ends only that worker: its trial goes stale and is replaced,
    so worker 0 finishes its work; the killed worker is named afterwards."""
    workers = start_workers(_killed, [()], first_index=1)
    done = []
    with pytest.raises(BenchError, match=r"worker 1 \(pid \d+\) was killed by SIGKILL"):
        work_beside(workers, lambda: done.append(_until(4)), NOTHING)
    assert done == ["finished"]


def test_a_worker_that_finishes_interrupts_nothing(tmp_path):
    workers = start_workers(_write_pid, [(str(tmp_path / "w1"),)], first_index=1)
    assert work_beside(workers, lambda: _until(3), NOTHING) == "finished"
    assert int((tmp_path / "w1").read_text()) == workers[0].process.pid


def test_worker_0_is_this_process_and_standby_workers_take_the_rest(tmp_path):
    """run_workers: entry 0 runs here, entry 1 in the first standby worker (spawned before its work
    was known); the standby worker given no work is stopped on the way out."""
    paths = [str(tmp_path / f"w{i}") for i in range(2)]
    with standby_workers(2, preload=("json",)) as standby:
        run_workers(_write_pid, [(p,) for p in paths], NOTHING, standby)
        used, spare = standby
        assert spare.process.is_alive()  # still waiting for work
    assert [int(Path(p).read_text()) for p in paths] == [os.getpid(), used.process.pid]
    assert used.process.exitcode == 0
    assert spare.process.exitcode == -signal.SIGKILL


def test_a_standby_worker_serves_one_call_and_a_later_call_spawns(tmp_path):
    """``make final`` passes its standby workers to one run_finals call per study group: the first
    call takes the standby worker, the next one (same list) spawns instead of reusing a spent one."""
    first, second = ([str(tmp_path / f"{call}w{i}") for i in range(2)] for call in "ab")
    with standby_workers(1, preload=("json",)) as standby:
        run_workers(_write_pid, [(p,) for p in first], NOTHING, standby)
        run_workers(_write_pid, [(p,) for p in second], NOTHING, standby)
    (worker,) = standby
    pids = [int(Path(p).read_text()) for p in [*first, *second]]
    assert pids[0] == pids[2] == os.getpid() and pids[1] == worker.process.pid
    assert pids[3] not in (os.getpid(), worker.process.pid)
    assert worker.process.exitcode == 0  # it did its work and was not killed as a spare


def test_without_standby_workers_the_others_are_spawned(tmp_path):
    paths = [str(tmp_path / f"w{i}") for i in range(3)]
    run_workers(_write_pid, [(p,) for p in paths], NOTHING)
    pids = [int(Path(p).read_text()) for p in paths]
    assert pids[0] == os.getpid() and len(set(pids)) == 3


@pytest.mark.parametrize(
    "overrides, workers",
    [
        ([], 1),
        (["method=kd", "tune.workers=3"], 3),
        (["tune.workers=2", "tune.workers=4"], 4),  # the last one wins, as in Hydra
        (["tune.workers=4", "launcher.name=slurm"], 1),  # Slurm jobs are no local processes
        (["tune.workers=4", "launcher.name='local'"], 4),
        (["tune.workers=${oc.env:N}"], 1),  # not a number: the composed config decides later
    ],
)
def test_workers_started_ahead_come_from_the_command_line(overrides, workers):
    assert requested_workers(overrides) == workers
