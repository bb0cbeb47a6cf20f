"""Δ at equal iterations beside Δ at equal compute, per KD method (``make final-compute`` rows).

Equal iterations: the method's finals against the baseline's finals (the comparison table's Δ).
Equal compute: the method's compute-matched finals (:mod:`bench.tune.compute_match`: trained for
``iterations × baseline step time / method step time``) against the same baseline finals. Both are
paired by seed — with repeats, by repeat over each repeat's mean, as the comparison table does — and
use the paired t-interval of :func:`bench.report.stats.paired_delta`.
A method that gains at equal iterations only because it trained on more compute loses that gain here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.stats import paired_delta
from bench.utils.io import write_text_atomic

COLUMNS = [
    "dataset",
    "student",
    "teacher",
    "method",
    "budget",
    "pairs",
    "iterations",
    "matched_iterations",
    "baseline_step_ms",
    "method_step_ms",
    "delta_iter",
    "delta_iter_ci_low",
    "delta_iter_ci_high",
    "delta_compute",
    "delta_compute_ci_low",
    "delta_compute_ci_high",
    "p_compute",
]


def _scores(part: pd.DataFrame, by_repeat: bool) -> dict[Any, float]:
    """mIoU per seed; with repeats, each repeat's mean over its seeds (the comparison table's model:
    a paired comparison of repeat means, so the tuning variance enters the interval)."""
    if by_repeat:
        return {int(k): float(v) for k, v in part.groupby("repeat")["miou"].mean().items()}
    return {int(r.seed): float(r.miou) for r in part.itertuples()}


def _per_repeat(part: pd.DataFrame, key: str) -> Any:
    """A match value of the compute-matched finals, one per repeat (``27; 49``) when they differ."""
    values = {int(r.repeat): r.tuning["compute_matched"][key] for r in part.itertuples()}
    distinct = [values[k] for k in sorted(values)]
    if len(set(distinct)) == 1:
        return distinct[0]
    return "; ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in distinct)


def compute_table(equal: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """One row per KD method × group × budget with compute-matched finals (``final_runs`` frames)."""
    rows: list[dict[str, Any]] = []
    if matched.empty or equal.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["dataset", "student", "teacher", "method", "budget"]
    for (dataset, student, teacher, method, budget), part in matched.groupby(keys, sort=True):
        same = (equal["dataset"] == dataset) & (equal["student"] == student) & (equal["budget"] == budget)
        base = equal[same & (equal["method"] == "baseline")]
        own = equal[same & (equal["method"] == method) & (equal["teacher"] == teacher)]
        # only runs the baseline has a partner for (same repeat and seed): a seed list changed
        # between make final and make final-compute must not tilt one repeat's mean
        paired = set(zip(base["repeat"], base["seed"], strict=True))
        part = part[[(r, s) in paired for r, s in zip(part["repeat"], part["seed"], strict=True)]]
        own = own[[(r, s) in paired for r, s in zip(own["repeat"], own["seed"], strict=True)]]
        by_repeat = part["repeat"].nunique() > 1
        at_iter = paired_delta(_scores(own, by_repeat), _scores(base, by_repeat))
        at_compute = paired_delta(_scores(part, by_repeat), _scores(base, by_repeat))
        rows.append(
            {
                "dataset": dataset,
                "student": student,
                "teacher": teacher,
                "method": method,
                "budget": budget,
                "pairs": f"{at_compute.n} repeats" if by_repeat else f"{at_compute.n} seeds",
                "iterations": _per_repeat(part, "reference_iterations"),
                "matched_iterations": _per_repeat(part, "iterations"),
                "baseline_step_ms": _per_repeat(part, "baseline_step_ms"),
                "method_step_ms": _per_repeat(part, "method_step_ms"),
                "delta_iter": at_iter.delta,
                "delta_iter_ci_low": at_iter.ci_low,
                "delta_iter_ci_high": at_iter.ci_high,
                "delta_compute": at_compute.delta,
                "delta_compute_ci_low": at_compute.ci_low,
                "delta_compute_ci_high": at_compute.ci_high,
                "p_compute": at_compute.p_value,
            }
        )
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def write_compute_table(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``compute_matched`` as CSV (full precision) and Markdown (2 decimals) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = (
        (out_dir / "compute_matched").with_suffix(".csv"),
        (out_dir / "compute_matched").with_suffix(".md"),
    )
    write_text_atomic(csv, table.to_csv(index=False))
    write_text_atomic(md, table.to_markdown(index=False, floatfmt=".2f") + "\n")
    return [csv, md]


def side_by_side(table: pd.DataFrame) -> str:
    """The console lines: per method, Δ at equal iterations and at equal compute with their intervals."""
    lines = []
    for r in table.itertuples():
        lines.append(
            f"{r.dataset}/{r.student}/{r.teacher}/{r.method} [{r.budget}]: "
            f"Δ equal iterations {_with_ci(r.delta_iter, r.delta_iter_ci_low, r.delta_iter_ci_high)} "
            f"({r.iterations} its) | Δ equal compute "
            f"{_with_ci(r.delta_compute, r.delta_compute_ci_low, r.delta_compute_ci_high)} "
            f"({r.matched_iterations} its: {_ms(r.method_step_ms)} vs {_ms(r.baseline_step_ms)} ms/step)"
        )
    return "\n".join(lines)


def _with_ci(delta: float, low: float, high: float) -> str:
    """``+1.20 [+0.30, +2.10]``; a constant Δ over the seeds has no interval (see report.stats)."""
    if math.isnan(low) or math.isnan(high):
        return f"{delta:+.2f} [no CI: constant Δ or one seed]"
    return f"{delta:+.2f} [{low:+.2f}, {high:+.2f}]"


def _ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)
