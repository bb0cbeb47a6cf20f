"""Figures of the comparison: Δ vs the tuned baseline with CIs, tuning and budget curves (exact bands).

Each figure is saved twice by :func:`save_figure`: vector PDF for papers (TrueType fonts, which
publishers accept where they reject Type 3, and no creation date, so the same results give the
same file) and a PNG at :data:`DPI` beside it. Every panel names dataset, student, teacher and
budget; trial axes have integer ticks and no axis uses an offset or scientific notation.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from bench.report.tuning_curves import CONFIDENCE, PAIR_CONFIDENCE, crossover, tuning_curve
from bench.utils.io import write_atomic

DPI = 300  # print resolution of the PNGs (the PDFs are vector)


def title(dataset: str, student: str, teacher: str | None, budget: str | None = None) -> str:
    """``ade20k · pspnet_r18 ← deeplabv3_r101 · budget trials20`` (teacher ``none``: baseline only)."""
    return f"{dataset} · {student} ← {teacher or 'none'}" + (f" · budget {budget}" if budget else "")


def legend_label(method: str, teacher: str | None) -> str:
    """A method's key in a legend: ``kd ← deeplabv3_r101``; the baseline has no teacher."""
    return method if method == "baseline" or not teacher else f"{method} ← {teacher}"


def plain_ticks(ax: Axes, integer_x: bool = False) -> None:
    """Tick labels as the numbers themselves: no offset (``+1.428e1``), no scientific notation;
    with ``integer_x`` only whole x ticks (trial counts: no trial 1.25)."""
    for axis in (ax.xaxis, ax.yaxis):
        formatter = axis.get_major_formatter()
        if isinstance(formatter, ScalarFormatter):  # not the method names of a categorical axis
            formatter.set_useOffset(False)
            formatter.set_scientific(False)
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
        ax.set_yticks(list(y), [legend_label(m, teacher) for m in part["method"]])
        ax.set_xlabel("Δ mIoU vs tuned baseline (points, 95% CI)")
        budget = part["budget"].iloc[0] if "budget" in part else None
        ax.set_title(title(dataset, student, teacher, budget), fontsize=10)
        plain_ticks(ax)
    if not groups:
        axes[0, 0].text(0.5, 0.5, "no KD method to compare", ha="center", va="center")
    fig.tight_layout()
    return fig


def tuning_curves_figure(curves: dict[tuple, dict[str, list[float | None]]]) -> plt.Figure:
    """Best-so-far hold-out mIoU vs counted trial, one line per method, one panel per
    dataset × student × teacher × budget (keys of :func:`bench.report.table.tuning_curves`)."""
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(6 * max(len(curves), 1), 4), squeeze=False)
    for ax, (key, methods) in zip(axes[0], sorted(curves.items(), key=str), strict=False):
        for method, curve in sorted(methods.items(), key=lambda m: (m[0] != "baseline", m[0])):
            ax.plot(
                range(1, len(curve) + 1),
                [float("nan") if v is None else v for v in curve],
                marker="o",
                ms=3,
                label=legend_label(method, key[2]),
            )
        ax.set_xlabel("counted trial")
        ax.set_ylabel("best hold-out mIoU so far (%)")
        ax.set_title(title(*key), fontsize=10)
        ax.legend(fontsize=8)
        plain_ticks(ax, integer_x=True)
    if not curves:
        axes[0, 0].text(0.5, 0.5, "no tuning curves in the finals", ha="center", va="center")
    fig.tight_layout()
    return fig


def budget_curves_figure(
    curves: dict[tuple, dict[str, list[list[float | None]]]], confidence: float = CONFIDENCE
) -> plt.Figure:
    """Per group: the median best hold-out mIoU of k trials with its exact simultaneous band
    (shaded where the trials bound it, a dotted edge where only one side is bounded) and the unbiased
    expected best (dashed) on top; Δ(k) of the median curves against the baseline's below, with each
    method's crossover budget and its interval in the legend (a dotted line at the point).

    Repeats' trials are pooled. See :mod:`bench.report.tuning_curves` for the estimators and bands.
    Keys as :func:`bench.report.table.budget_curves`.
    """
    cols = max(len(curves), 1)
    fig, axes = plt.subplots(2, cols, figsize=(6 * cols, 7), squeeze=False, sharex="col")
    for col, (key, methods) in enumerate(sorted(curves.items(), key=str)):
        top, bottom = axes[0, col], axes[1, col]
        teacher = key[2]
        base = tuning_curve(methods["baseline"], confidence) if "baseline" in methods else None
        base_pair = tuning_curve(methods["baseline"], PAIR_CONFIDENCE) if base else None
        for i, (method, studies) in enumerate(sorted(methods.items(), key=lambda m: m[0] != "baseline")):
            curve = tuning_curve(studies, confidence)
            if curve is None:
                continue
            k, color = curve.k, f"C{i}"
            label = legend_label(method, teacher)
            repeats = f" ({len(studies)} repeats)" if len(studies) > 1 else ""
            top.plot(k, curve.median, color=color, label=label + repeats)
            top.plot(k, curve.expected, color=color, ls="--", lw=1)
            bounded = ~np.isnan(curve.low) & ~np.isnan(curve.high)
            top.fill_between(k, curve.low, curve.high, where=bounded, color=color, alpha=0.2, lw=0)
            for edge in (curve.low, curve.high):
                top.plot(k, edge, color=color, ls=":", lw=0.8)
            if method == "baseline" or base is None:
                continue
            n = min(curve.n_trials, base.n_trials)
            bottom.plot(k[:n], curve.median[:n] - base.median[:n], color=color, label=label)
            cross = crossover(base_pair, tuning_curve(studies, PAIR_CONFIDENCE))
            if cross.k is not None:
                top.axvline(cross.k, color=color, ls=":", lw=1)
            bottom.plot([], [], " ", label=f"  crossover: {cross.label()} {cross.interval()}")
        top.plot([], [], "k--", lw=1, label="expected best (unbiased)")
        top.set_ylabel(f"median best hold-out mIoU (%), {confidence:.0%} band")
        top.set_title(title(*key), fontsize=10)
        top.legend(fontsize=8)
        bottom.axhline(0, color="black", lw=0.8)
        bottom.set_xlabel("trials k")
        bottom.set_ylabel("Δ(k) of median curves vs baseline (points)")
        bottom.legend(fontsize=8)
        for ax in (top, bottom):
            plain_ticks(ax, integer_x=True)
    if not curves:
        axes[0, 0].text(0.5, 0.5, "no per-trial scores in the finals", ha="center", va="center")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: Path) -> list[Path]:
    """Write ``fig`` to ``path`` (PNG at :data:`DPI`) and as vector PDF beside it, each atomically;
    close it. Returns both paths."""
    pdf = path.with_suffix(".pdf")
    with plt.rc_context({"pdf.fonttype": 42}):  # TrueType, not Type 3
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
        write_atomic(pdf, lambda f: fig.savefig(f, format="pdf", metadata={"CreationDate": None}))
    plt.close(fig)
    return [path, pdf]
