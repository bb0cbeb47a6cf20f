"""The comparison tables as ``make report`` prints them: one block per comparison, within the terminal.

Each block is headed by what makes it a comparison (dataset · student ← teacher · budget), so two
comparisons never show two identical-looking ``baseline`` rows; the columns are the ones a reader
compares (mIoU in percent, Δ with its 95 % interval, p after Holm, cost); the flags follow the block.
The files (``tables/*.csv|md|tex``) keep every column.
"""

from __future__ import annotations

import math
import shutil

import pandas as pd

from bench.report.published import lines as published_lines

# (column of the comparison table, heading, format); mIoU columns are in percent
SHOWN = [
    ("method", "method", "{}"),
    ("budget_kind", "kind", "{}"),
    ("trials", "trials", "{:.0f}"),
    ("repeats", "rep", "{:.0f}"),
    ("seeds", "seeds", "{:.0f}"),
    ("miou_mean", "mIoU %", "{:.2f}"),
    ("miou_std", "sd", "{:.2f}"),
    ("delta", "Δ", "{:+.2f}"),
    ("delta_ci_low", "CI low", "{:+.2f}"),
    ("delta_ci_high", "CI high", "{:+.2f}"),
    ("p_holm", "p Holm", "{:.3f}"),
    ("tune_seconds", "tune s", "{:.0f}"),
    ("step_time_ms", "ms/step", "{:.0f}"),
    ("undertuned", "flag", "{}"),
]


def _cell(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "undertuned" if value else ""
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def block_title(dataset: str, student: str, teacher: object, budget: str) -> str:
    teacher_name = teacher if isinstance(teacher, str) and teacher else "none"
    return f"{dataset} · {student} ← {teacher_name} · budget {budget}"


def console_tables(tables: dict[str, pd.DataFrame], width: int | None = None) -> str:
    """Every budget's table as one block per dataset × student × teacher, each line at most ``width``
    characters (default: the terminal's, at least 60); columns that do not fit are left out, last
    first, and named under the block."""
    width = width or max(shutil.get_terminal_size((100, 24)).columns, 60)
    out = []
    for budget, table in tables.items():
        out.append(f"\nbudget {budget}:")
        keys = ["dataset", "student", "teacher"]
        for (dataset, student, teacher), part in table.groupby(keys, dropna=False, sort=False):
            rows = [[_cell(r.get(c), fmt) for c, _, fmt in SHOWN] for r in part.to_dict("records")]
            heads = [h for _, h, _ in SHOWN]
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
            keep = len(heads)
            while keep > 1 and sum(widths[:keep]) + 2 * (keep - 1) > width:
                keep -= 1
            title = block_title(dataset, student, teacher, budget)
            out.append(title[:width])
            line = "  ".join(
                h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(heads[:keep])
            )
            out.append(line.rstrip())
            for r in rows:
                cells = [r[i].ljust(widths[i]) if i == 0 else r[i].rjust(widths[i]) for i in range(keep)]
                out.append("  ".join(cells).rstrip())
            if keep < len(heads):
                out.append(f"(not shown at this width: {', '.join(heads[keep:])}; see tables/)"[:width])
            out.extend(published_lines(part))
    return "\n".join(out)
