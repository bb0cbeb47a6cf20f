"""What each trial ran on, and the time budget's unit: device-seconds.

Every trial records, before it trains, under the user attribute ``compute``:

- ``device_name``: the GPU's name, or the CPU's model;
- ``gpus_per_trial``: the GPUs the trial trained on (0 on CPU), ``processes``: its ranks;
- ``threads``: torch's CPU threads of the worker (``torch.get_num_threads()``), ``workers``: the
  sweep's ``tune.workers`` (the machine's CPUs are split among them);
- ``devices``: the compute units a time budget counts (below);
- ``probe_ms``: the time of one fixed matrix product on the trial's device
  (:func:`bench.utils.devices.probe_ms`) — the same work whatever the method, so it measures the
  compute (its speed, its threads, the machine's load), not the method.

and, when it ends, ``device_seconds`` and its ``step_time_ms`` (the Trainer's seconds per step).

**Device-seconds** (the unit of ``budget=time``): a trial's training seconds × the devices it held:
its GPUs on CUDA (``tune.gpus_per_trial``, so N GPUs per trial do not buy N× the work per budget
second), or its worker's torch threads on CPU (CPU-thread-seconds of wall time: a worker given four
threads spends the budget four times as fast as one given one). A study without these records (an
older version) counts each trial's training seconds once.

The study keeps the summary of its counted trials (:func:`study_compute`) as the user attribute
``compute``; the finals copy it into their rows and the report compares the sides of a time-budget
comparison (:mod:`bench.report.compute_check`).
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from optuna.trial import FrozenTrial

from bench.config import RunConfig
from bench.utils.devices import device_name, probe_ms
from bench.utils.runtime import resolve_device

COMPUTE = "compute"  # the trial's and the study's user attribute


def trial_compute(cfg: RunConfig) -> dict[str, Any]:
    """The compute record of a trial about to train with ``cfg`` in this worker process."""
    device = resolve_device(cfg.device)
    processes = cfg.tune.gpus_per_trial
    gpus = processes if device.type == "cuda" else 0
    threads = torch.get_num_threads()
    return {
        "device_name": device_name(device),
        "gpus_per_trial": gpus,
        "processes": processes,
        "threads": threads,
        "workers": cfg.tune.workers,
        "devices": gpus or threads,
        "probe_ms": round(probe_ms(device), 4),
    }


def devices(trial: FrozenTrial) -> int:
    """The devices a trial's seconds are multiplied by (1 for a trial without a record)."""
    return int((trial.user_attrs.get(COMPUTE) or {}).get("devices", 1))


def study_compute(trials: list[FrozenTrial]) -> dict[str, Any]:
    """The compute of ``trials`` (a study's counted trials): every device, GPU count, thread count and
    worker count they ran with, and the median probe and step times. Empty without records."""
    records = [t.user_attrs[COMPUTE] for t in trials if t.user_attrs.get(COMPUTE)]
    if not records:
        return {}
    steps = [t.user_attrs["step_time_ms"] for t in trials if t.user_attrs.get("step_time_ms")]
    return {
        "device_name": sorted({r["device_name"] for r in records}),
        "gpus_per_trial": sorted({r["gpus_per_trial"] for r in records}),
        "threads": sorted({r["threads"] for r in records}),
        "workers": sorted({r["workers"] for r in records}),
        "probe_ms": statistics.median(r["probe_ms"] for r in records),
        "step_time_ms": statistics.median(steps) if steps else None,
        "recorded": len(records),
    }


def describe(compute: dict[str, Any]) -> str:
    """One line: ``AMD EPYC, 0 GPUs/trial, 1 thread × 2 workers, step 71 ms, probe 4.1 ms (median)``."""
    if not compute:
        return "compute not recorded"

    def one(values: list[Any]) -> str:
        return "/".join(str(v) for v in values)

    step = compute.get("step_time_ms")
    return (
        f"{one(compute['device_name'])}, {one(compute['gpus_per_trial'])} GPUs/trial, "
        f"{one(compute['threads'])} threads × {one(compute['workers'])} workers, "
        f"step {'-' if step is None else f'{step:.0f}'} ms, probe {compute['probe_ms']:.1f} ms (medians)"
    )
