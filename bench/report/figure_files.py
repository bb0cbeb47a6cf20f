"""The report's figures, one file per budget like the tables, and never an empty frame.

For each budget of the report: ``figures/gaps_<budget>``, ``tuning_curves_<budget>`` and
``budget_curves_<budget>`` (PNG + PDF). The unsuffixed ``gaps``, ``tuning_curves`` and
``budget_curves`` are the largest budget's that has something to draw, as ``comparison.*`` is the
largest budget's table. A figure with nothing to draw (no KD method compared with a baseline, no
per-trial scores) is not written; why is returned instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.report.figures import budget_curves_figure, gaps_figure, save_figure, tuning_curves_figure
from bench.report.table import budget_curves, tuning_curves


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a gaps panel can show: baselines, and KD methods with a Δ (their group has a baseline)."""
    return table[(table["method"] == "baseline") | table["delta"].notna()]


def write_figures(
    runs: pd.DataFrame, tables: dict[str, pd.DataFrame], out_dir: Path
) -> tuple[list[Path], list[str]]:
    """Every budget's figures under ``out_dir``; returns (paths written, a line per figure left out)."""
    written: list[Path] = []
    skipped: list[str] = []
    latest: dict[
        str, Callable[[], object]
    ] = {}  # figure name → how to draw it at the largest budget that has it
    for budget, table in tables.items():
        part = runs[runs["budget"] == budget]
        gaps = comparable(table)
        curves = tuning_curves(part)
        budgets = budget_curves(part)
        drawers = {
            "gaps": (
                (lambda gaps=gaps: gaps_figure(gaps)) if (gaps["method"] != "baseline").any() else None,
                "no KD method compared with a baseline at this budget",
            ),
            "tuning_curves": (
                (lambda curves=curves: tuning_curves_figure(curves)) if curves else None,
                "no tuning curves in its finals",
            ),
            "budget_curves": (
                (lambda budgets=budgets: budget_curves_figure(budgets)) if budgets else None,
                "no per-trial scores in its finals",
            ),
        }
        for name, (draw, why) in drawers.items():
            if draw is None:
                skipped.append(f"{name}_{budget}: not drawn, {why}")
                continue
            written.extend(save_figure(draw(), out_dir / f"{name}_{budget}.png"))
            latest[name] = draw
    for name, draw in latest.items():
        written.extend(save_figure(draw(), out_dir / f"{name}.png"))
    return written, skipped
