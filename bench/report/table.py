"""The comparison table: one row per method per dataset × student × teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.stats import paired_delta, undertuned
from bench.results import load_rows
from bench.utils.io import write_text_atomic

COLUMNS = [
    "dataset",
    "student",
    "teacher",
    "method",
    "budget_kind",
    "trials",
    "seeds",
    "miou_mean",
    "miou_std",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "tune_seconds",
    "step_time_ms",
    "peak_mem_mb",
    "undertuned",
]
EXTRA = ["budget_check", "holdout_miou", "default_holdout_miou", "study"]
# Settings that must be identical for every method of a comparison.
SHARED_SETTINGS = (
    "budget",
    "sampler",
    "sampler_seed",
    "pruner",
    "pruner_startup_trials",
    "pruner_warmup_steps",
    "trial_iterations",
    "val_interval",
    "protocol_hash",
)


def final_runs(finals_dir: Path) -> pd.DataFrame:
    """One line per final run (rows written by ``make final``)."""
    records = []
    for row in load_rows(finals_dir):
        tuning = row.get("tuning") or {}
        if not tuning:
            continue
        records.append(
            {
                "dataset": row["dataset"],
                "student": row["student"],
                "teacher": row["teacher"],
                "method": row["method"],
                "seed": row["seed"],
                "miou": 100 * row["metrics"]["miou"],
                "step_time_ms": row["cost"]["step_time_ms"],
                "peak_mem_mb": row["cost"]["peak_mem_mb"],
                "study": tuning["study"],
                "tuning": tuning,
            }
        )
    return pd.DataFrame.from_records(records)


def comparison(runs: pd.DataFrame, n_resamples: int = 10000) -> pd.DataFrame:
    """The comparison table from :func:`final_runs` (mIoU and Δ in percentage points)."""
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS + EXTRA)
    out = []
    kd = runs[runs["teacher"].notna()]
    groups = sorted({(r.dataset, r.student, r.teacher) for r in kd.itertuples()}) or sorted(
        {(r.dataset, r.student, None) for r in runs.itertuples()}
    )
    for dataset, student, teacher in groups:
        same = (runs["dataset"] == dataset) & (runs["student"] == student)
        baseline = runs[same & (runs["method"] == "baseline")]
        members = runs[same & ((runs["teacher"] == teacher) | (runs["method"] == "baseline"))]
        base_scores = dict(zip(baseline["seed"], baseline["miou"], strict=True))
        rows = [
            _row(dataset, student, teacher, method, part, base_scores, n_resamples)
            for method, part in members.groupby("method", sort=True)
        ]
        rows.sort(key=lambda r: (r["method"] != "baseline", r["method"]))
        for r, check in zip(rows, _budget_checks(rows, members), strict=True):
            r["budget_check"] = check
        out.extend(rows)
    for r in out:
        r.pop("_tuning")
    return pd.DataFrame.from_records(out, columns=COLUMNS + EXTRA)


def _row(
    dataset: str,
    student: str,
    teacher: str | None,
    method: str,
    part: pd.DataFrame,
    base_scores: dict[int, float],
    n_resamples: int,
) -> dict[str, Any]:
    tuning = part["tuning"].iloc[0]
    scores = dict(zip(part["seed"], part["miou"], strict=True))
    is_base = method == "baseline"
    d = paired_delta(scores, base_scores, n_resamples=n_resamples)
    values = np.array(list(scores.values()))
    return {
        "dataset": dataset,
        "student": student,
        "teacher": teacher,
        "method": method,
        "budget_kind": tuning["settings"]["budget"]["kind"],
        "trials": tuning["trials"],
        "seeds": len(scores),
        "miou_mean": values.mean(),
        "miou_std": values.std(ddof=1) if len(values) > 1 else float("nan"),
        "delta": 0.0 if is_base else d.delta,
        "delta_ci_low": float("nan") if is_base else d.ci_low,
        "delta_ci_high": float("nan") if is_base else d.ci_high,
        "p_value": float("nan") if is_base else d.p_value,
        "tune_seconds": tuning["tune_seconds"],
        "step_time_ms": part["step_time_ms"].mean(),
        "peak_mem_mb": part["peak_mem_mb"].max(),
        "undertuned": undertuned(tuning["best_so_far"]),
        "holdout_miou": 100 * tuning["holdout_miou"],
        "default_holdout_miou": (
            100 * tuning["literature_default_miou"]
            if tuning.get("literature_default_miou") is not None
            else float("nan")
        ),
        "study": tuning["study"],
        "_tuning": tuning,
        "_seeds": sorted(scores),
    }


def _budget_checks(rows: list[dict[str, Any]], members: pd.DataFrame) -> list[str]:
    """'ok', or why a method's comparison with the baseline is not on equal terms."""
    base = next((r for r in rows if r["method"] == "baseline"), None)
    checks = []
    for r in rows:
        problems = []
        t = r["_tuning"]
        if not t.get("budget_met", True):
            problems.append("budget not met")
        if base is None:
            problems.append("no tuned baseline")
        else:
            ref = base["_tuning"]
            for key in SHARED_SETTINGS:
                if t["settings"].get(key) != ref["settings"].get(key):
                    problems.append(f"{key} differs from the baseline's")
            if r["budget_kind"] == "trials" and r["trials"] != base["trials"]:
                problems.append(f"{r['trials']} trials vs the baseline's {base['trials']}")
            if r["_seeds"] != base["_seeds"]:
                problems.append("seeds differ from the baseline's")
        checks.append("ok" if not problems else "; ".join(problems))
    for r in rows:
        r.pop("_seeds")
    return checks


def write_tables(table: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """comparison.csv (full precision), comparison.md and comparison.tex (2 decimals)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "comparison.csv",
        "md": out_dir / "comparison.md",
        "tex": out_dir / "comparison.tex",
    }
    write_text_atomic(paths["csv"], table.to_csv(index=False))
    shown = table[[*COLUMNS, "budget_check"]]
    md = shown.to_markdown(index=False, floatfmt=".2f")
    if (table["budget_check"] != "ok").any():
        md = "**WARNING: some comparisons are not on equal budgets (see budget_check).**\n\n" + md
    write_text_atomic(paths["md"], md + "\n")
    latex = shown.style.format(precision=2, na_rep="--").hide(axis="index").to_latex(hrules=True)
    write_text_atomic(paths["tex"], latex.replace("_", r"\_"))
    return paths


def tuning_curves(runs: pd.DataFrame) -> dict[tuple, dict[str, list[float | None]]]:
    """Best-so-far hold-out mIoU (%) per trial, per group and method."""
    curves: dict[tuple, dict[str, list[float | None]]] = {}
    for r in runs.drop_duplicates("study").itertuples():
        key = (r.dataset, r.student)
        curves.setdefault(key, {})[r.method] = [
            None if v is None else 100 * v for v in r.tuning["best_so_far"]
        ]
    return curves
