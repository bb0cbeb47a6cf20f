"""Verdicts that cannot be forged (issue 25): each case as the reviewer built it, now caught, and an
honest control that stays ``ok``. Rows are hand-made result rows (``_write``) with the config,
environment and code version a real final records."""

import json
import math

import pandas as pd
import pytest

from bench.report.__main__ import main as report_main
from bench.report.table import comparison, final_runs

from .test_report import _write

CONFIG = {
    "seed": 0,
    "device": "cpu",
    "output_dir": "x",
    "dataset": {"name": "synthetic", "root": "/data/a", "val_size": 6},
    "student": {"name": "tiny", "encoder_weights": None},
    "teacher": {"name": "big", "checkpoint": None},
    "method": {"name": "baseline", "terms": {}},
    "train": {
        "iterations": 150,
        "batch_size": 4,
        "precision": "fp32",
        "optimizer": {"lr": 0.01},
        "log_interval": 10,
    },
    "eval": {"flip": False, "mode": "whole", "max_images": None, "split": "val"},
    "tune": {"trials": 4, "workers": 1},
}
COMMIT = "c0ffee" * 6 + "abcd"


def _final(root, method, seed, miou, set_=None, threads=1, commit=COMMIT, dirty=None, **kwargs):
    """A final of ``method`` (kd: teacher 'big') with its composed config; ``set_`` changes keys."""
    teacher = None if method == "baseline" else "big"
    _write(root, method, teacher, seed, miou, **kwargs)
    path = next(p for p in root.rglob("result.json") if f"/{method}/" in str(p) and f"seed{seed}/" in str(p))
    row = json.loads(path.read_text())
    config = json.loads(json.dumps(CONFIG))
    config["seed"], config["method"]["name"] = seed, method
    config["output_dir"] = str(path.parent)
    config["dataset"]["root"] = f"/clone{seed}/data"  # another clone's path: not a difference
    config["train"]["optimizer"]["lr"] = 0.01 * (1 + seed) if method == "kd" else 0.02  # tuned: not one
    for key, value in (set_ or {}).items():
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value
    row["config"] = config
    row["environment"] = {
        "git": {"commit": commit, "dirty": bool(dirty), "diff_sha256": dirty},  # dirty: the diff's digest
        "torch_threads": threads,
        "device_name": "x86",
    }
    path.write_text(json.dumps(row))
    return path


def _pair(root, kd_set=None, base_set=None, kd_threads=1, kd_commit=COMMIT, kd_dirty=None, seeds=3):
    for seed in range(seeds):
        _final(root, "baseline", seed, 70.0 + seed, set_=base_set)
        _final(
            root,
            "kd",
            seed,
            71.0 + seed * 0.5,
            set_=kd_set,
            threads=kd_threads,
            commit=kd_commit,
            dirty=kd_dirty,
        )


def _table(root, **kwargs):
    return comparison(final_runs(root), **kwargs).set_index("method", drop=False)


def test_honest_finals_stay_ok(tmp_path):
    _pair(tmp_path)
    table = _table(tmp_path)
    assert list(table["budget_check"]) == ["ok", "ok"]
    assert set(table["code"]) == {COMMIT[:12]}


@pytest.mark.parametrize(
    ("key", "kd_value", "base_value"),
    [
        ("train.iterations", 150, 8),
        ("eval.flip", True, False),
        ("eval.mode", "slide", "whole"),
        ("dataset.val_size", 6, 3),
        ("eval.max_images", None, 2),
        ("train.batch_size", 8, 4),
        ("train.precision", "bf16", "fp32"),
    ],
)
def test_fault_finals_under_other_settings_are_named(tmp_path, key, kd_value, base_value):
    """Before: baseline finals at train.iterations=8, kd at 150 read `ok` (Δ +10.66, p = 0.0002)."""
    _pair(tmp_path, kd_set={key: kd_value}, base_set={key: base_value})
    table = _table(tmp_path)
    shown = lambda v: "unset" if v is None else str(v).lower()  # noqa: E731
    assert f"finals differ: {key} {shown(kd_value)} vs the baseline's {shown(base_value)}" in (
        table.loc["kd"].budget_check
    )
    assert table.loc["baseline"].budget_check == "ok"


def test_fault_finals_with_other_threads_are_named(tmp_path):
    """WORKERS changes the finals' CPU threads: make final WORKERS=4 for kd, 1 for the baseline."""
    _pair(tmp_path, kd_threads=4)
    assert "finals differ: threads 4 vs the baseline's 1" in _table(tmp_path).loc["kd"].budget_check


def test_fault_finals_of_one_method_that_differ_among_themselves(tmp_path):
    _pair(tmp_path)
    _final(tmp_path, "kd", 2, 80.0, set_={"train.iterations": 300})
    kd = _table(tmp_path).loc["kd"]
    assert "the finals differ among themselves: train.iterations 150/300" in kd.budget_check


def test_fault_code_versions_mixed_or_dirty_unless_allowed(tmp_path):
    _pair(tmp_path, kd_commit="deadbeef" * 5)
    table = _table(tmp_path)
    assert "code deadbeefdead vs the comparison's" in table.loc["kd"].budget_check
    assert "code" in table.loc["baseline"].budget_check  # the whole comparison is mixed
    allowed = _table(tmp_path, allow_mixed_code=True)
    assert list(allowed["budget_check"]) == ["ok", "ok"]
    assert allowed.loc["kd"].code == "mixed, allowed: deadbeefdead"  # recorded in the table
    dirty = tmp_path / "dirty"
    _pair(dirty, kd_dirty="feed" * 16)  # kd's finals ran from uncommitted changes, the baseline's did not
    assert f"code {COMMIT[:12]}+changes:feedfeed vs the comparison's" in _table(dirty).loc["kd"].budget_check


def test_one_set_of_uncommitted_changes_is_one_version_shown_in_the_table(tmp_path):
    for seed in range(3):
        _final(tmp_path, "baseline", seed, 70.0 + seed, dirty="feed" * 16)
        _final(tmp_path, "kd", seed, 71.0 + seed, dirty="feed" * 16)
    table = comparison(final_runs(tmp_path))
    assert list(table["budget_check"]) == ["ok", "ok"]
    assert set(table["code"]) == {f"{COMMIT[:12]}+changes:feedfeed"}
    from bench.report.table import flags

    assert any("finals ran from uncommitted changes" in line for line in flags(table))


def test_report_allow_mixed_code_is_shown(tmp_path, capsys):
    _pair(tmp_path / "f", kd_commit="deadbeef" * 5)
    out = tmp_path / "out"
    assert report_main(["--finals", str(tmp_path / "f"), "--out", str(out)]) == 0
    assert (pd.read_csv(out / "tables" / "comparison.csv")["budget_check"] != "ok").all()
    assert report_main(["--finals", str(tmp_path / "f"), "--out", str(out), "--allow-mixed-code"]) == 0
    csv = pd.read_csv(out / "tables" / "comparison.csv").set_index("method")
    assert csv.loc["kd", "budget_check"] == "ok" and csv.loc["kd", "code"].startswith("mixed, allowed")
    assert (
        "code versions mixed, allowed by --allow-mixed-code" in (out / "tables" / "comparison.md").read_text()
    )


def _budgets(root, budgets=(6, 3)):
    for trials in budgets:
        budget = {"budget": {"kind": "trials", "trials": trials, "seconds": None}}
        for seed in range(3):
            for method, teacher, miou in (
                ("baseline", None, 70.0 + seed),
                ("kd", "big", 71.0 + seed + trials),
            ):
                study = f"synthetic/tiny/{teacher}/{method}/trials"
                _write(
                    root,
                    method,
                    teacher,
                    seed,
                    miou,
                    trials,
                    study=study,
                    folder=f"{study}/trials{trials}",
                    tuning=budget,
                )


def test_fault_budgets_listed_largest_first_gave_comparison_the_last(tmp_path):
    """--budgets 6,3 wrote comparison.* for trials3 (the last listed), not the largest."""
    _budgets(tmp_path / "f")
    out = tmp_path / "out"
    assert report_main(["--finals", str(tmp_path / "f"), "--out", str(out), "--budgets", "6,3"]) == 0
    assert set(pd.read_csv(out / "tables" / "comparison.csv")["trials"]) == {6}


def test_fault_stale_budget_tables_stay_after_their_finals_are_gone(tmp_path):
    _budgets(tmp_path / "f")
    out = tmp_path / "out"
    assert report_main(["--finals", str(tmp_path / "f"), "--out", str(out)]) == 0
    assert (out / "tables" / "comparison_trials3.csv").is_file()
    import shutil

    for folder in (tmp_path / "f").rglob("trials3"):
        shutil.rmtree(folder)
    assert report_main(["--finals", str(tmp_path / "f"), "--out", str(out)]) == 0
    assert not list((out / "tables").glob("comparison_trials3.*"))
    assert (out / "tables" / "comparison_trials6.csv").is_file()


def test_no_nan_in_honest_rows(tmp_path):
    _pair(tmp_path)
    assert not math.isnan(_table(tmp_path).loc["kd"].p_value)


def test_a_non_finite_seed_flags_its_row(tmp_path):
    """A NaN final (a diverged seed) left the row NaN and still `ok`."""
    _pair(tmp_path)
    _final(tmp_path, "kd", 1, math.nan)
    kd = _table(tmp_path).loc["kd"]
    assert "non-finite final mIoU at seed 1" in kd.budget_check
    assert _table(tmp_path).loc["baseline"].budget_check == "ok"


def test_a_non_finite_baseline_seed_flags_every_method_of_its_comparison(tmp_path):
    _pair(tmp_path)
    _final(tmp_path, "baseline", 2, math.nan)
    table = _table(tmp_path)
    assert "non-finite final mIoU at seed 2" in table.loc["baseline"].budget_check
    assert "the baseline's final mIoU is non-finite at seed 2" in table.loc["kd"].budget_check


def test_holms_family_keeps_a_method_whose_test_is_undefined(tmp_path):
    """Holm dropped a NaN p-value from the family: another method's p_holm came out halved."""
    _pair(tmp_path)
    for seed in range(3):
        _final(tmp_path, "fitnet", seed, 72.0 + seed * 0.3)
    _final(tmp_path, "fitnet", 1, math.nan)
    table = _table(tmp_path)
    assert math.isnan(table.loc["fitnet"].p_value) and math.isnan(table.loc["fitnet"].p_holm)
    kd = table.loc["kd"]
    assert kd.p_holm == pytest.approx(min(1.0, 2 * kd.p_value))  # family of 2 KD methods, not 1


def test_the_markdown_table_names_holms_family(tmp_path):
    from bench.report.table import write_tables

    _pair(tmp_path)
    paths = write_tables(comparison(final_runs(tmp_path)), tmp_path / "out")
    assert "Holm's family: the KD methods of each dataset × student × teacher" in paths["md"].read_text()
