"""Figures of the comparison: Δ vs the tuned baseline with CIs, and tuning curves (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def gaps_figure(table: pd.DataFrame) -> plt.Figure:
    """One panel per dataset × student × teacher: Δ mIoU (points) with 95% CI (bars) per method.

    Red points mark studies flagged as under-tuned.
    """
    kd = table[table["method"] != "baseline"]
    groups = list(kd.groupby(["dataset", "student", "teacher"], dropna=False))
    fig, axes = plt.subplots(len(groups) or 1, 1, figsize=(7, 1.2 + 0.45 * max(len(kd), 1)), squeeze=False)
    for ax, ((dataset, student, teacher), part) in zip(axes[:, 0], groups, strict=False):
        y = range(len(part))
        low = (part["delta"] - part["delta_ci_low"]).fillna(0).clip(lower=0)
        high = (part["delta_ci_high"] - part["delta"]).fillna(0).clip(lower=0)
        colors = ["tab:red" if u else "tab:blue" for u in part["undertuned"]]
        ax.errorbar(part["delta"], list(y), xerr=[low, high], fmt="none", ecolor="gray", capsize=3)
        ax.scatter(part["delta"], list(y), c=colors, zorder=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(list(y), part["method"])
        ax.set_xlabel("Δ mIoU vs tuned baseline (points, 95% CI)")
        ax.set_title(f"{dataset} · {student} ← {teacher}", fontsize=10)
    if not groups:
        axes[0, 0].text(0.5, 0.5, "no KD method to compare", ha="center", va="center")
    fig.tight_layout()
    return fig


def tuning_curves_figure(curves: dict[tuple, dict[str, list[float | None]]]) -> plt.Figure:
    """Best-so-far hold-out mIoU vs counted trial, one line per method, one panel per group."""
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(6 * max(len(curves), 1), 4), squeeze=False)
    for ax, ((dataset, student), methods) in zip(axes[0], curves.items(), strict=False):
        for method, curve in sorted(methods.items()):
            ax.plot(
                range(1, len(curve) + 1),
                [float("nan") if v is None else v for v in curve],
                marker="o",
                ms=3,
                label=method,
            )
        ax.set_xlabel("counted trial")
        ax.set_ylabel("best hold-out mIoU so far (%)")
        ax.set_title(f"{dataset} · {student}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
