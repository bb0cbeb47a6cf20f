"""The report's flag for finals whose scores were selected on the split they report.

A run with ``eval.select=best_on_val`` reports the best of its validations on ``eval.split``
(CIRKD's "best of 50 validations on val"): the choice and the score come from the same images, an
optimistic bias that a fair comparison must not carry, even when every method had it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def selection_problems(finals: Sequence[dict[str, Any]]) -> list[str]:
    """One ``budget_check`` entry when any of ``finals`` was selected on its evaluation split."""
    picked = [f for f in finals if (f.get("selection") or {}).get("rule") == "best_on_val"]
    if not picked:
        return []
    splits = sorted({str(f["selection"].get("split", "val")) for f in picked})
    seeds = ", ".join(str(f.get("seed")) for f in picked)
    counts = sorted({f["selection"].get("validations") for f in picked} - {None})
    best_of = f"best of {'/'.join(map(str, counts))} validations" if counts else "best validation"
    return [
        f"selected on {'/'.join(splits)} (eval.select=best_on_val, {best_of}, seed {seeds}): "
        "optimistic, for reproducing a paper's number, not a fair comparison; rerun with eval.select=last"
    ]
