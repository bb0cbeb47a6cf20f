"""Pruning that could penalise slow starters unseen: comparisons whose pruned fractions differ.

The median pruner stops a trial whose intermediate hold-out score is below the median of earlier
trials at the same step. A method whose learning curve starts slowly (a feature-KD term that first
fights the CE loss, a teacher signal that needs warm-up) is pruned more often than the baseline even
when it would finish higher, so its study spends its budget on fewer complete trials.

**Markedly different** (:func:`pruned_differs`): the pruned fractions are at least
:data:`PRUNED_GAP` apart *and*, given the trial counts, at least :data:`Z_MIN` standard errors of
the pruner's own noise apart (the pooled two-proportion z statistic). One trial of four pruned more
than the baseline (0.25 vs 0.50, the demo's studies) is noise; 0 of 5 against 3 of 5 (0 % vs 60 %)
is not. Such a KD row's ``budget_check`` says ``pruned 0.60 vs the baseline's 0.00`` (per study,
so per repeat), and the table's ``pruning_check`` column says the same for the row as a whole
(repeats pooled). ``make rescore STUDY=...`` (:mod:`bench.rescore`) re-runs the pruned trials to
completion and shows whether the best configuration changes.
"""

from __future__ import annotations

import math

import pandas as pd

PRUNED_GAP = 0.25  # |pruned_frac − baseline's| from which a comparison may be flagged
Z_MIN = 1.96  # and the gap in standard errors of the pooled pruned fraction (two-sided 5 %)


def pruned_differs(
    pruned: float,
    trials: float | None,
    base_pruned: float,
    base_trials: float | None,
    gap: float = PRUNED_GAP,
) -> bool:
    """Whether ``pruned`` of ``trials`` differs markedly from ``base_pruned`` of ``base_trials``.

    Without trial counts (``None``) the fractions ``pruned`` / ``base_pruned`` are compared by the
    gap alone."""
    if trials is None or base_trials is None:
        return abs(pruned - base_pruned) >= gap - 1e-12
    if not trials or not base_trials:
        return False
    a, b = pruned / trials, base_pruned / base_trials
    if abs(a - b) < gap - 1e-12:
        return False
    pooled = (pruned + base_pruned) / (trials + base_trials)
    se = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / base_trials))
    return abs(a - b) >= Z_MIN * se - 1e-12


def pruned_problem(tuning: dict, base: dict) -> str | None:
    """``budget_check``'s text when a study's pruned trials differ markedly from its baseline's."""
    n, n0 = tuning.get("trials") or 0, base.get("trials") or 0
    k, k0 = tuning.get("pruned", 0), base.get("pruned", 0)
    if not n or not n0 or not pruned_differs(k, n, k0, n0):
        return None
    return f"pruned {k / n:.2f} vs the baseline's {k0 / n0:.2f} ({k} of {n} vs {k0} of {n0}; make rescore)"


def _counts(r: pd.Series) -> tuple[float, float | None]:
    """(pruned, trials) of a table row, repeats pooled; without counts in the table (pruned
    fraction, None)."""
    if "trials" not in r or pd.isna(r.get("trials")):
        return float(r["pruned_frac"]), None
    n = float(r["trials"]) * float(r.get("repeats", 1) or 1)
    return round(float(r["pruned_frac"]) * n), n


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
        k0, n0 = _counts(base.iloc[0])
        for idx, r in part.iterrows():
            frac = float(r["pruned_frac"])
            if r["method"] == "baseline" or math.isnan(frac) or math.isnan(reference):
                continue
            k, n = _counts(r)
            if pruned_differs(k, n, k0, n0, gap):
                out[idx] = f"pruned {frac:.2f} vs the baseline's {reference:.2f}"
    return out


def pruning_flags(table: pd.DataFrame, gap: float = PRUNED_GAP) -> list[str]:
    """One line per flagged row of :func:`pruning_check`."""
    check = pruning_check(table, gap)
    return [
        f"{r.dataset}/{r.student}/{r.teacher}/{r.method}: {check[idx]} (|difference| ≥ {gap} and ≥ "
        f"{Z_MIN} standard errors); a slow starter may be pruned unseen: `make rescore STUDY=<its study>` "
        "re-runs the pruned trials to completion, or re-run the studies with tune.pruner=none"
        for idx, r in zip(table.index, table.itertuples(), strict=True)
        if check[idx] != "ok"
    ]
