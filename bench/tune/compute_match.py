"""Compute-matched finals: each KD method's final trains for the baseline final's measured cost.

At equal iterations a KD method gets more compute than the baseline (a teacher forward, its loss
terms). In compute-matched mode each KD study's final runs train for

    iterations_m = round(iterations × t_baseline / t_method)

iterations, where t is the mean measured step time (``cost.step_time_ms``) of that study's own
equal-iteration finals and of the baseline's finals of the same repeat — measured on the device that
ran them, which must be one device name for both (a step time from another GPU model is not a
price). The schedule is stretched with it: the poly schedule runs over the new iteration count and
warm-up, validation and checkpoint intervals are scaled by the same factor. The baseline is not
retrained: its equal-iteration finals are the reference. Rows go to ``tune.compute_finals_dir``
(``--out``, default ``results/finals_compute``) with the match recorded under ``tuning.compute_matched``; the
report pairs them by seed with the baseline's finals (``Δ at equal compute``) beside the
equal-iteration Δ. Run after ``make final`` (``make final-compute``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ConfigError
from bench.results import RESULT_FILE, read_row
from bench.tune.finals import FinalJob, final_jobs, run_final

log = logging.getLogger("bench")

COMPUTE_FINALS_DIR = Path("results/finals_compute")


@dataclass
class StepTime:
    """The mean measured step time of a study's equal-iteration finals and where it was measured."""

    ms: float
    device: str
    iterations: int
    seeds: int


def matched_iterations(iterations: int, baseline_ms: float, method_ms: float) -> int:
    """``round(iterations × baseline_ms / method_ms)``, at least 1."""
    if baseline_ms <= 0 or method_ms <= 0:
        raise ConfigError(
            f"step times must be positive to match compute (baseline {baseline_ms}, method {method_ms})"
        )
    return max(1, round(iterations * baseline_ms / method_ms))


def stretched(cfg_train: dict[str, Any], iterations: int) -> list[str]:
    """Overrides that train for ``iterations`` with the schedule (warm-up, intervals) scaled alike."""
    factor = iterations / cfg_train["iterations"]
    out = [f"train.iterations={iterations}"]
    warmup = cfg_train["schedule"]["warmup_iters"]
    if warmup:
        out.append(f"train.schedule.warmup_iters={min(iterations, max(1, round(warmup * factor)))}")
    for key in ("val_interval", "checkpoint_interval"):
        if cfg_train.get(key):
            out.append(f"train.{key}={max(1, round(cfg_train[key] * factor))}")
    return out


def step_time(jobs: list[FinalJob]) -> StepTime:
    """The mean step time of a study's finished equal-iteration finals (all seeds)."""
    rows = [read_row(j.output_dir / RESULT_FILE) for j in jobs if (j.output_dir / RESULT_FILE).is_file()]
    if not rows:
        raise ConfigError(
            f"study '{jobs[0].study}' has no finished final run under {jobs[0].output_dir.parent}: "
            "compute-matched finals price each method by its equal-iteration finals; run `make final` first"
        )
    devices = {r["environment"]["device_name"] for r in rows}
    if len(devices) > 1:
        raise ConfigError(
            f"the finals of '{jobs[0].study}' ran on several devices ({', '.join(sorted(devices))}): "
            "their step times are no single price; rerun them on one device kind"
        )
    return StepTime(
        ms=float(np.mean([r["cost"]["step_time_ms"] for r in rows])),
        device=devices.pop(),
        iterations=int(rows[0]["cost"]["iterations"]),
        seeds=len(rows),
    )


def _baseline_study(name: str) -> str:
    """``ds/student/teacher/kd/trials[/r1]`` → ``ds/student/none/baseline/trials[/r1]``."""
    parts = name.split("/")
    return "/".join([parts[0], parts[1], "none", "baseline", *parts[4:]])


def compute_matched_jobs(
    overrides: list[str],
    method: str | None = None,
    out_dir: Path = COMPUTE_FINALS_DIR,
    at_requested: bool = False,
) -> list[FinalJob]:
    """The compute-matched final runs of every matching KD study (the baseline's are its own finals)."""

    jobs = final_jobs(overrides, None, at_requested)  # every study: the KD ones and their baselines
    by_study: dict[str, list[FinalJob]] = {}
    for job in jobs:
        by_study.setdefault(job.study, []).append(job)
    out = []
    for name, study_jobs in sorted(by_study.items()):
        parts = name.split("/")
        if parts[3] == "baseline" or (method and parts[3] != method):
            continue
        base_jobs = by_study.get(_baseline_study(name))
        if not base_jobs:
            raise ConfigError(
                f"no baseline study for '{name}' ({_baseline_study(name)}); run its sweep first"
            )
        base, own = step_time(base_jobs), step_time(study_jobs)
        if base.device != own.device:
            raise ConfigError(
                f"'{name}' finals ran on {own.device}, the baseline's on {base.device}: step times from two "
                "devices are not one price; rerun both finals on one device kind"
            )
        iterations = matched_iterations(own.iterations, base.ms, own.ms)
        match = {
            "iterations": iterations,
            "reference_iterations": own.iterations,
            "baseline_step_ms": base.ms,
            "method_step_ms": own.ms,
            "device_name": own.device,
            "baseline_study": _baseline_study(name),
        }
        log.info(
            "%s: %.1f ms/step vs the baseline's %.1f ms on %s → %d iterations (of %d)",
            name,
            own.ms,
            base.ms,
            own.device,
            iterations,
            own.iterations,
        )
        for job in study_jobs:
            out.append(_matched_job(job, match, out_dir))
    return out


def _matched_job(job: FinalJob, match: dict[str, Any], out_dir: Path) -> FinalJob:
    """``job`` at the matched iterations, its schedule stretched, its row under ``out_dir``."""
    from bench.config.compose import config_hash, load_config, to_dict

    train = to_dict(load_config(job.overrides))["train"]
    tag = job.output_dir.parent.name  # the budget tag, e.g. trials20
    output_dir = out_dir / job.study / tag / f"seed{job.seed}"
    overrides = [
        *job.overrides,
        *stretched(train, match["iterations"]),
        f"output_dir={output_dir}",
    ]
    cfg = load_config(overrides)
    annotations = {**job.annotations, "compute_matched": match}
    return FinalJob(job.study, job.seed, overrides, annotations, Path(cfg.output_dir), config_hash(cfg))


def run_compute_matched(
    overrides: list[str],
    method: str | None = None,
    out_dir: Path = COMPUTE_FINALS_DIR,
    at_requested: bool = False,
) -> list[dict[str, Any]]:
    """Train (or reuse) every compute-matched final run, one after another; returns their rows."""
    return [run_final(job) for job in compute_matched_jobs(overrides, method, out_dir, at_requested)]
