"""Pruning that could penalise slow starters unseen: comparisons whose pruned fractions differ.

The median pruner stops a trial whose intermediate hold-out score is below the median of earlier
trials at the same step. A method whose learning curve starts slowly (a feature-KD term that first
fights the CE loss, a teacher signal that needs warm-up) is pruned more often than the baseline even
when it would finish higher, so its study spends its budget on fewer complete trials. Every KD row
whose study pruned a fraction of its counted trials at least :data:`PRUNED_GAP` away from the
baseline's gets ``pruning_check`` = ``pruned 0.50 vs the baseline's 0.10``; ``ok`` otherwise. To see
whether the verdict depends on pruning, re-run the comparison's studies with ``tune.pruner=none`` in
another storage and finals folder (statistics guide) and compare the two reports.
"""

from __future__ import annotations

import math

import pandas as pd

PRUNED_GAP = 0.25  # |pruned_frac − baseline's| from which a comparison is flagged


def pruning_check(table: pd.DataFrame, gap: float = PRUNED_GAP) -> pd.Series:
    """Per row of a comparison table: ``ok`` or what differs from the baseline's pruned fraction."""
    keys = ["dataset", "student", "teacher"]
    if "budget" in table:
        keys.append("budget")
    out = pd.Series("ok", index=table.index, dtype=object)
    for _, part in table.groupby(keys, dropna=False, sort=False):
        base = part[part["method"] == "baseline"]
        if base.empty:
            continue
        reference = float(base["pruned_frac"].iloc[0])
        for idx, r in part.iterrows():
            frac = float(r["pruned_frac"])
            if r["method"] == "baseline" or math.isnan(frac) or math.isnan(reference):
                continue
            if abs(frac - reference) >= gap - 1e-12:
                out[idx] = f"pruned {frac:.2f} vs the baseline's {reference:.2f}"
    return out


def pruning_flags(table: pd.DataFrame, gap: float = PRUNED_GAP) -> list[str]:
    """One line per flagged row of :func:`pruning_check`."""
    check = pruning_check(table, gap)
    return [
        f"{r.dataset}/{r.student}/{r.teacher}/{r.method}: {check[idx]} (|difference| ≥ {gap}); a slow "
        "starter may be pruned unseen: re-run the studies with tune.pruner=none to check the verdict"
        for idx, r in zip(table.index, table.itertuples(), strict=True)
        if check[idx] != "ok"
    ]
