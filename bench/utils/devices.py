"""Where tuning workers run: CPU threads from the process's CPU affinity, GPUs shared by several workers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.errors import ConfigError


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, which CPU sets and quotas restrict), not the host's."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: its extra config overrides (its device) and its torch CPU threads."""

    overrides: tuple[str, ...]
    threads: int


def worker_slots(
    workers: int, gpus: int, workers_per_gpu: int = 1, cpus: int | None = None
) -> list[WorkerSlot]:
    """Split this machine among ``workers`` processes.

    CPU threads: the available CPUs divided evenly (at least one each). GPUs: with ``gpus`` visible
    CUDA devices, workers ``k·w … k·w + w − 1`` (``w = workers_per_gpu``) share GPU ``k mod gpus``; a
    device is assigned only when there is a choice to make (several GPUs, or several workers per GPU
    asked for), so a single-GPU machine keeps ``device=auto``.
    """
    if workers < 1 or workers_per_gpu < 1:
        raise ConfigError(f"tune.workers={workers} and tune.workers_per_gpu={workers_per_gpu} must be ≥ 1")
    threads = max(1, (cpus or available_cpus()) // workers)
    slots = []
    for i in range(workers):
        device = (
            ()
            if gpus < 1 or (gpus == 1 and workers_per_gpu == 1)
            else (f"device=cuda:{i // workers_per_gpu % gpus}",)
        )
        slots.append(WorkerSlot(device, threads))
    return slots
