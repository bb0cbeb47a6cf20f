"""Sweep workers on this machine (``launcher.name=local``): this process is worker 0, the others
are spawned processes (:func:`bench.workers.processes.run_workers`), each on its slot of the
machine's GPUs and CPU threads (:func:`bench.utils.devices.worker_slots`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from bench.utils.devices import torch_threads, worker_slots
from bench.utils.logs import setup_logging
from bench.workers.processes import Worker, dismiss, run_workers

if TYPE_CHECKING:
    from bench.workers.work import Work


def run(work: Work, standby: Sequence[Worker] = ()) -> None:
    """``tune.workers`` workers over the studies; interrupted, ``work.on_stopped`` marks their trials."""
    cfg = work.cfg
    n = cfg.tune.workers
    dismiss(standby[n - 1 :])
    if n == 1:
        work.work_on(work.rotations(1)[0])
        return
    gpus = torch.cuda.device_count() if cfg.device in ("auto", "cuda") else 0
    slots = worker_slots(n, gpus, cfg.tune.workers_per_gpu, cfg.tune.gpus_per_trial)
    args = [
        (work.work_on, [[*overrides, *slot.overrides] for overrides in rotation], slot.threads)
        for rotation, slot in zip(work.rotations(n), slots, strict=True)
    ]
    run_workers(_worker_main, args, work.on_stopped, standby)


def _worker_main(work_on: Callable[[list[list[str]]], None], studies: list[list[str]], threads: int) -> None:
    setup_logging()
    with torch_threads(threads):
        work_on(studies)
