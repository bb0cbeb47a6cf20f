"""The report flags finals selected on the split they report (eval.select=best_on_val)."""

import json

from bench.report.table import comparison, final_runs, flags

from .test_report import _write

BEST = {"rule": "best_on_val", "split": "val", "interval": 800, "validations": 50, "best_step": 32000}


def _finals(root, selection_of):
    """Baseline and KD finals over two seeds; ``selection_of(method, seed)`` is each row's record."""
    for seed in range(2):
        for method, teacher, miou in (("baseline", None, 70.0 + seed), ("kd", "big", 71.5 + seed)):
            _write(root, method, teacher, seed, miou)
            path = root / f"synthetic/tiny/{teacher}/{method}/trials4/seed{seed}/result.json"
            row = json.loads(path.read_text())
            selection = selection_of(method, seed)
            if selection is not None:
                row |= {"precision": "fp32", "selection": selection}
            path.write_text(json.dumps(row))
    return comparison(final_runs(root)).set_index("method")


def test_rows_selected_on_val_are_flagged_even_when_every_method_was(tmp_path):
    table = _finals(tmp_path, lambda method, seed: BEST)
    for method in ("baseline", "kd"):
        check = table.loc[method, "budget_check"]
        assert check != "ok" and "selected on val" in check and "best of 50 validations" in check
    assert any("selected on val" in line for line in flags(table.reset_index()))


def test_one_seed_selected_on_val_flags_its_row(tmp_path):
    table = _finals(tmp_path, lambda method, seed: BEST if (method, seed) == ("kd", 1) else {"rule": "last"})
    assert (
        "selected on val" in table.loc["kd", "budget_check"] and "seed 1" in table.loc["kd", "budget_check"]
    )


def test_an_honest_comparison_stays_ok(tmp_path):
    table = _finals(tmp_path, lambda method, seed: {"rule": "last"})
    assert list(table["budget_check"]) == ["ok", "ok"]


def test_rows_of_older_versions_without_a_selection_stay_ok(tmp_path):
    table = _finals(tmp_path, lambda method, seed: None)
    assert list(table["budget_check"]) == ["ok", "ok"]
