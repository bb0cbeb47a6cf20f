"""The pruning check: KD rows whose pruned fraction is far from the baseline's are flagged."""

import pandas as pd

from bench.report.pruning import PRUNED_GAP, pruning_check, pruning_flags


def _table(fractions):
    return pd.DataFrame(
        [
            {"dataset": "synthetic", "student": "tiny", "teacher": "big", "method": m, "budget": "trials4",
             "pruned_frac": f}
            for m, f in fractions.items()
        ]
    )  # fmt: skip


def test_a_gap_of_a_quarter_is_flagged_and_a_smaller_one_is_not():
    table = _table({"baseline": 0.25, "kd": 0.5, "fitnet": 0.25 + PRUNED_GAP - 0.01, "ifvd": 0.0})
    check = pruning_check(table)
    assert list(check) == [
        "ok",
        "pruned 0.50 vs the baseline's 0.25",
        "ok",  # just under the gap
        "pruned 0.00 vs the baseline's 0.25",  # pruned less than the baseline counts too
    ]
    lines = pruning_flags(table)
    assert len(lines) == 2 and lines[0].startswith("synthetic/tiny/big/kd: pruned 0.50")
    assert "tune.pruner=none" in lines[0]


def test_each_comparison_uses_its_own_baseline():
    """A baseline of another budget is no reference: each budget's group is checked on its own."""
    a = _table({"baseline": 0.0, "kd": 0.5})
    b = _table({"baseline": 0.5, "kd": 0.5}).assign(budget="trials8")
    check = pruning_check(pd.concat([a, b], ignore_index=True))
    assert list(check) == ["ok", "pruned 0.50 vs the baseline's 0.00", "ok", "ok"]
    assert list(pruning_check(_table({"kd": 0.9}))) == ["ok"]  # no baseline: nothing to compare
