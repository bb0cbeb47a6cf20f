"""Device selection, seeding and deterministic mode."""

from __future__ import annotations

import os
import random
import resource

import numpy as np
import torch

from bench.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` → the first CUDA device when one is visible, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"device='{name}' is not a valid device; use auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device='{name}' but no CUDA device is visible; use device=auto or device=cpu")
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels.

    Deterministic mode makes reruns bit-identical on CPU. On CUDA a few kernels (e.g. the backward of
    bilinear upsampling) have no deterministic implementation; they warn instead of failing.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this before its first call to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict:
    """Every RNG state a resumed run needs to continue bit-identically."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def derive_seed(*keys: int) -> int:
    """A 32-bit seed derived from integer keys (stable across processes and platforms)."""
    return int(np.random.SeedSequence([k % 2**63 for k in keys]).generate_state(1)[0])


def reset_peak_memory(device: torch.device) -> str:
    """Start measuring this run's peak memory; returns the kind :func:`peak_memory_mb` will report.

    On CUDA the allocator's peak is reset. On CPU, Linux lets a process reset its RSS high-water mark
    (``VmHWM``) by writing 5 to ``/proc/self/clear_refs``, so each run in a process (a sweep's
    trials, the demo) reports its own peak; where that is not possible the figure is the process's
    high-water mark since it started, and its kind says so.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "cuda_max_allocated"
    try:
        _trim_heap()  # freed memory of earlier runs goes back to the system first: it is not this run's
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "cpu_peak_rss_run"
    except OSError:
        return "cpu_max_rss_process"


def peak_memory_mb(device: torch.device, kind: str) -> float:
    """The peak memory (MiB) since :func:`reset_peak_memory` returned ``kind``."""
    if kind == "cuda_max_allocated":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if kind == "cpu_peak_rss_run":
        return _status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_mb(device: torch.device, kind: str) -> float:
    """The memory (MiB) in use now, as :func:`peak_memory_mb` counts it: allocated on CUDA, else resident."""
    if kind == "cuda_max_allocated":
        return torch.cuda.memory_allocated(device) / 2**20
    return _status_mb("VmRSS")


def _status_mb(key: str) -> float:
    """A memory figure of this process from ``/proc/self/status`` (Linux), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"{key} not in /proc/self/status")


def _trim_heap() -> None:
    """glibc's ``malloc_trim(0)``: return the heap's free pages to the system (no-op elsewhere)."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
