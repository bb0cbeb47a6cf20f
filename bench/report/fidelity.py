"""Fidelity of the tuning schedule (``make fidelity``, :mod:`bench.fidelity`): Spearman ρ between
tuning-schedule and final-schedule hold-out scores with its interval, per study; the report's table
and the flags of studies whose short schedule misranks (ρ below :data:`RHO_THRESHOLD`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.utils.io import write_text_atomic
from bench.utils.units import PERCENT

RHO_THRESHOLD = 0.5  # below: the short schedule misranks (docs: statistics guide)
SUMMARY = "fidelity.json"
COLUMNS = [
    "study",
    "configurations",
    "rho",
    "rho_ci_low",
    "rho_ci_high",
    "best_trial",
    "final_best_trial",
    "best_stays_best",
    "misranks",
    "threshold",
]


def fidelity_table(root: Path) -> pd.DataFrame:
    """One row per study with a fidelity summary under ``root`` (empty when there is none)."""
    rows = read_summaries(root) if Path(root).is_dir() else []
    return pd.DataFrame.from_records([{k: r[k] for k in COLUMNS} for r in rows], columns=COLUMNS)


def fidelity_flags(table: pd.DataFrame) -> list[str]:
    """A line per study whose ρ is below its threshold or whose tuned best loses at the final schedule."""
    out = []
    for r in table.itertuples():
        if r.misranks:
            why = (
                "ties every configuration" if math.isnan(r.rho) else f"Spearman ρ {r.rho:.2f} < {r.threshold}"
            )
            out.append(
                f"{r.study}: the tuning schedule misranks configurations ({why}; make fidelity): its "
                "tuned best may not be the final schedule's best"
            )
        if not r.best_stays_best:
            out.append(
                f"{r.study}: the tuned best (trial {r.best_trial}) is not the best at the final schedule "
                f"(trial {r.final_best_trial} is)"
            )
    return out


def write_fidelity_table(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``fidelity`` as CSV and Markdown (flags on top) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = (out_dir / "fidelity").with_suffix(".csv"), (out_dir / "fidelity").with_suffix(".md")
    write_text_atomic(csv, table.to_csv(index=False))
    text = table.to_markdown(index=False, floatfmt=".2f")
    lines = fidelity_flags(table)
    if lines:
        text = "**WARNING:**\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n" + text
    write_text_atomic(md, text + "\n")
    return [csv, md]


def spearman(tuning: list[float], final: list[float]) -> tuple[float, float, float]:
    """Spearman ρ with its 95% Fisher-z interval (SE √(1.06/(n−3)), Fieller et al. 1957)."""
    from scipy import stats

    n = len(tuning)
    if n < 2 or len(set(tuning)) == 1 or len(set(final)) == 1:  # ties everywhere: no ranking
        return math.nan, math.nan, math.nan
    rho = float(stats.spearmanr(tuning, final).statistic)
    if n < 4 or math.isnan(rho):
        return rho, math.nan, math.nan
    z, half = math.atanh(max(min(rho, 1 - 1e-12), -1 + 1e-12)), 1.959964 * math.sqrt(1.06 / (n - 3))
    return rho, math.tanh(z - half), math.tanh(z + half)


def summarise(
    study: str, best: int, scores: dict[int, tuple[float, float]], top: list[int]
) -> dict[str, Any]:
    """ρ, its interval and whether the study's best stays best, from {trial: (tuning, final)} hold-out
    mIoU in percent."""
    numbers = sorted(scores)
    tuning = [scores[n][0] for n in numbers]
    final = [scores[n][1] for n in numbers]
    rho, low, high = spearman(tuning, final)
    tuning_tied = len(numbers) >= 2 and len(set(tuning)) == 1
    final_best = max(numbers, key=lambda n: (scores[n][1], -n))
    return {
        "study": study,
        "configurations": len(numbers),
        "rho": rho,
        "rho_ci_low": low,
        "rho_ci_high": high,
        "best_trial": best,
        "final_best_trial": final_best,
        "best_stays_best": final_best == best,
        # ties at the tuning schedule leave ρ undefined: that schedule ranks nothing, a misranking too
        "misranks": (not math.isnan(rho) and rho < RHO_THRESHOLD) or tuning_tied,
        "tuning_tied": tuning_tied,
        "threshold": RHO_THRESHOLD,
        "top": top,
        "trials": {str(n): {"tuning": scores[n][0], "final": scores[n][1]} for n in numbers},
        "scores_unit": PERCENT,  # of ``trials`` (summaries without it: fractions)
    }


def format_summary(s: dict[str, Any]) -> str:
    """``ρ = 0.71 [0.10, 0.93] over 6 configurations; the tuned best (#3) stays best``."""
    if math.isnan(s["rho"]):
        which = "tuning" if s.get("tuning_tied") else "final"
        interval = f"undefined: every configuration scored the same at the {which} schedule"
    elif math.isnan(s["rho_ci_low"]):
        interval = "no interval: fewer than 4 configurations"
    else:
        interval = f"95% CI [{s['rho_ci_low']:.2f}, {s['rho_ci_high']:.2f}]"
    best = (
        f"the tuned best (#{s['best_trial']}) stays best"
        if s["best_stays_best"]
        else f"the tuned best (#{s['best_trial']}) is NOT best at the final schedule "
        f"(#{s['final_best_trial']} is)"
    )
    flag = ""
    if s["misranks"]:
        flag = (
            "; FLAG: the tuning schedule cannot tell the configurations apart"
            if s.get("tuning_tied")
            else f"; FLAG: ρ below {s['threshold']} — the short schedule misranks"
        )
    return (
        f"{s['study']}: Spearman ρ = {s['rho']:.2f}, {interval}, over {s['configurations']} "
        f"configurations (tuning vs final schedule hold-out mIoU); {best}{flag}"
    )


def read_summaries(root: Path) -> list[dict[str, Any]]:
    """Every study's fidelity summary under ``root`` (``tune.fidelity_dir``)."""
    return [json.loads(p.read_text()) for p in sorted(Path(root).rglob(SUMMARY))]
