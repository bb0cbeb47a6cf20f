"""Time budgets on equal compute: the sides of a time-budget comparison must have run on the same.

A time budget is counted in device-seconds (:mod:`bench.tune.compute_record`), so more GPUs or more
threads per trial do not buy more work; what device-seconds cannot equalise is checked here, from the
compute records of each side's counted trials (the finals copy them from the study). A KD row's
``budget_check`` names, against its baseline's study:

- another device model (``device AMD EPYC vs NVIDIA H100``), other GPUs per trial, other torch
  threads per worker;
- a probe time (a fixed matrix product timed before every trial, the same for every method) whose
  medians are :data:`PROBE_RATIO` or more apart: one side ran on a slower or more loaded machine,
  so each of its device-seconds bought less work. Honest runs on one machine measure the same probe
  within a few tens of percent; a core shared with another job doubles it or more;
- a record on one side only (finals from an older version on the other).

Trial budgets count trials, not seconds: their compute is recorded and shown, not compared.
"""

from __future__ import annotations

from typing import Any

PROBE_RATIO = 1.5  # max/min of the two sides' median probe times from which compute differs
COMPARED = (("device_name", "device"), ("gpus_per_trial", "GPUs per trial"), ("threads", "threads"))


def compute_problems(own: dict[str, Any] | None, base: dict[str, Any] | None) -> list[str]:
    """What differs between a study's compute record and its baseline's (empty: the same, or neither
    recorded — finals of an older version)."""
    own, base = own or {}, base or {}
    if not own and not base:
        return []
    if not own or not base:
        whose = "this study" if not own else "the baseline's study"
        return [f"compute not recorded for {whose} (finals of an older version: rerun its sweep and final)"]
    differ = [
        f"{label} {_one(own[key])} vs {_one(base[key])}"
        for key, label in COMPARED
        if own.get(key) != base.get(key)
    ]
    slow, fast = max(own["probe_ms"], base["probe_ms"]), min(own["probe_ms"], base["probe_ms"])
    if fast > 0 and slow / fast >= PROBE_RATIO:
        differ.append(
            f"probe {own['probe_ms']:.1f} ms vs {base['probe_ms']:.1f} ms "
            f"(×{slow / fast:.1f} ≥ {PROBE_RATIO}: a slower or loaded machine)"
        )
    return [f"compute differs from the baseline's: {', '.join(differ)}"] if differ else []


def _one(values: Any) -> str:
    return "/".join(str(v) for v in values) if isinstance(values, list) else str(values)
