"""Where tuning workers run: CPU threads from the process's CPU affinity, GPUs shared by several workers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import ConfigError

if TYPE_CHECKING:
    import torch


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, which CPU sets and quotas restrict), not the host's."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads set to ``n`` (a worker's share, :class:`WorkerSlot`) for the block, then
    restored: the sweep's own process is worker 0 and goes on afterwards (finals, the report)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: its extra config overrides (its device) and its torch CPU threads."""

    overrides: tuple[str, ...]
    threads: int


def worker_slots(
    workers: int, gpus: int, workers_per_gpu: int = 1, gpus_per_trial: int = 1, cpus: int | None = None
) -> list[WorkerSlot]:
    """Split this machine among ``workers`` processes.

    CPU threads: the available CPUs divided evenly (at least one each). GPUs: with ``gpus`` visible
    CUDA devices, workers ``k·w … k·w + w − 1`` (``w = workers_per_gpu``) share GPU ``k mod gpus``; a
    device is assigned only when there is a choice to make (several GPUs, or several workers per GPU
    asked for), so a single-GPU machine keeps ``device=auto``.

    With ``gpus_per_trial = N > 1`` each trial runs on N processes (:mod:`bench.workers.multi_gpu`) and
    workers get disjoint sets of N GPUs: worker ``i`` (or its group of ``w``) gets GPUs ``k·N … k·N +
    N − 1`` for ``k = i // w``, as ``device=cuda:<k·N>`` (a multi-GPU trial on ``cuda:K`` uses
    ``K … K + N − 1``). The sets must fit in the visible GPUs: they are never shared round-robin.
    """
    if workers < 1 or workers_per_gpu < 1 or gpus_per_trial < 1:
        raise ConfigError(
            f"tune.workers={workers}, tune.workers_per_gpu={workers_per_gpu} and "
            f"tune.gpus_per_trial={gpus_per_trial} must be ≥ 1"
        )
    threads = max(1, (cpus or available_cpus()) // workers)
    if gpus_per_trial > 1 and gpus >= 1:
        return _gpu_sets(workers, gpus, workers_per_gpu, gpus_per_trial, threads)
    slots = []
    for i in range(workers):
        device = (
            ()
            if gpus < 1 or (gpus == 1 and workers_per_gpu == 1)
            else (f"device=cuda:{i // workers_per_gpu % gpus}",)
        )
        slots.append(WorkerSlot(device, threads))
    return slots


def _gpu_sets(
    workers: int, gpus: int, workers_per_gpu: int, gpus_per_trial: int, threads: int
) -> list[WorkerSlot]:
    sets = -(-workers // workers_per_gpu)
    if sets * gpus_per_trial > gpus:
        sharing = f" / tune.workers_per_gpu={workers_per_gpu}" if workers_per_gpu > 1 else ""
        raise ConfigError(
            f"tune.workers={workers}{sharing} × tune.gpus_per_trial={gpus_per_trial} needs "
            f"{sets * gpus_per_trial} GPUs, but {gpus} are visible: lower tune.workers or "
            "tune.gpus_per_trial (or make more GPUs visible, CUDA_VISIBLE_DEVICES)"
        )
    if sets == 1 and workers_per_gpu == 1:
        return [WorkerSlot((), threads)]  # one worker on GPUs 0 … N-1: device=auto
    return [
        WorkerSlot((f"device=cuda:{i // workers_per_gpu * gpus_per_trial}",), threads) for i in range(workers)
    ]


def device_name(device: torch.device) -> str:
    """The model of the device a run trains on: the GPU's name, or the CPU's model (``/proc/cpuinfo``)."""
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


# The probe: a fixed fp32 matrix product, the same whatever the method, so its time says how fast the
# device (with this process's threads and the machine's load) is, not how costly a method is.
PROBE_SIZE = {"cpu": 512, "cuda": 2048}
PROBE_REPEATS = 5


def probe_ms(device: torch.device) -> float:
    """Milliseconds of one fixed matrix product on ``device`` (median of :data:`PROBE_REPEATS`, after
    one warm-up): a method-independent measure of the compute a trial ran on (~50 ms on a CPU core)."""
    import time

    import torch

    n = PROBE_SIZE["cuda" if device.type == "cuda" else "cpu"]
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=gen).to(device)
    b = torch.rand(n, n, generator=gen).to(device)
    times = []
    for i in range(PROBE_REPEATS + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first is warm-up (allocation, kernel selection)
            times.append(1000 * (time.perf_counter() - start) / 4)
    return float(sorted(times)[len(times) // 2])
