"""The report on data and code identity (issue 25 items 2, 3): rows as a real final records them.

The issue's case: the baseline on copy A, kd (and its teacher) on copy B, A with the val images copied
into train, both `dataset=folder` — Δ +12.50 read `ok`. The honest control: the same copy at two roots.
"""

import json

import pandas as pd

from bench.report.__main__ import main as report_main
from bench.report.table import flags
from bench.tune.study import settings_hash

from .test_verdicts import _final, _table

A_TRAIN, B_TRAIN, VAL = "a" * 64, "b" * 64, "f" * 64
A_TUNE = {"tune_train": "1" * 64, "tune_holdout": "2" * 64}
B_TUNE = {"tune_train": "3" * 64, "tune_holdout": "2" * 64}


def _fp(sha, root):
    return {"samples": 4, "files": 8, "bytes": 100, "content": "files", "sha256": sha, "root": root}


def _row(root, method, seed, miou, train=A_TRAIN, tune=A_TUNE, where="/data/a", versions=None):
    """A final with the data fingerprints and study settings a real one records."""
    path = _final(root, method, seed, miou)
    row = json.loads(path.read_text())
    row["data"] = {"train": _fp(train, where), "val": _fp(VAL, where)}
    settings = row["tuning"]["settings"]
    settings["data"] = dict(tune)
    row["tuning"]["settings_hash"] = settings_hash(settings)
    if versions is not None:
        row["tuning"]["code_versions"] = versions
    path.write_text(json.dumps(row))
    return path


def test_fault_kd_on_another_copy_of_the_data_read_ok(tmp_path):
    """Before: baseline on A, kd on B (val images in train) read `ok`; now `data differs`."""
    for seed in range(3):
        _row(tmp_path, "baseline", seed, 70.0 + seed)
        _row(tmp_path, "kd", seed, 82.5 + seed, train=B_TRAIN, tune=B_TUNE, where="/data/b")
    table = _table(tmp_path)
    kd = table.loc["kd"].budget_check
    assert f"data differs: train {B_TRAIN[:12]} vs the baseline's {A_TRAIN[:12]}" in kd
    assert f"tune_train {B_TUNE['tune_train'][:12]} vs the baseline's {A_TUNE['tune_train'][:12]}" in kd
    assert "tune_holdout" not in kd and "val" not in kd.split("data differs:")[1]  # only what differs
    assert table.loc["baseline"].budget_check == "ok"


def test_the_same_copy_at_two_roots_stays_ok(tmp_path):
    tuned = {**A_TUNE, "train": A_TRAIN}
    for seed in range(3):
        _row(tmp_path, "baseline", seed, 70.0 + seed, where="/data/a", tune=tuned)
        _row(tmp_path, "kd", seed, 71.0 + seed, where=f"/clone{seed}/a", tune=tuned)
    assert list(_table(tmp_path)["budget_check"]) == ["ok", "ok"]


def test_finals_of_one_method_on_different_copies(tmp_path):
    for seed in range(3):
        _row(tmp_path, "baseline", seed, 70.0 + seed)
        _row(tmp_path, "kd", seed, 71.0 + seed, train=B_TRAIN if seed == 2 else A_TRAIN)
    kd = _table(tmp_path).loc["kd"].budget_check
    assert f"data differs among the finals: train {A_TRAIN[:12]}/{B_TRAIN[:12]}" in kd


def test_a_row_without_fingerprints_against_one_with_them(tmp_path):
    """A side that records none is `unknown`, not silently equal (rows without any: not judged)."""
    for seed in range(3):
        _row(tmp_path, "baseline", seed, 70.0 + seed)
        _final(tmp_path, "kd", seed, 71.0 + seed)
    assert (
        f"data differs: train unknown vs the baseline's {A_TRAIN[:12]}"
        in _table(tmp_path).loc["kd"].budget_check
    )
    older = tmp_path / "older"
    for seed in range(3):
        _final(older, "baseline", seed, 70.0 + seed)
        _final(older, "kd", seed, 71.0 + seed)
    assert list(_table(older)["budget_check"]) == ["ok", "ok"]


def test_finals_on_another_copy_than_their_studies(tmp_path):
    """Both studies tuned on copy A (their `train` fingerprint), every final retrained on copy B."""
    tuned = {**A_TUNE, "train": A_TRAIN}
    for seed in range(3):
        _row(tmp_path, "baseline", seed, 70.0 + seed, train=B_TRAIN, tune=tuned)
        _row(tmp_path, "kd", seed, 71.0 + seed, train=B_TRAIN, tune=tuned)
    table = _table(tmp_path)
    for method in ("baseline", "kd"):
        check = table.loc[method].budget_check
        assert check == f"data differs from the study's: train {B_TRAIN[:12]} vs the study's {A_TRAIN[:12]}"


def test_fault_a_study_of_two_code_versions_read_ok(tmp_path):
    """Before: a clone at another commit added trials to the kd study, unseen; now flagged, or shown
    in `code` with --allow-mixed-code."""
    mixed = ["c0ffeec0ffee (code 111111111111)", "deadbeefdead (code 222222222222)"]
    for seed in range(3):
        _row(tmp_path, "baseline", seed, 70.0 + seed, versions=mixed[:1])
        _row(tmp_path, "kd", seed, 71.0 + seed, versions=mixed)
    table = _table(tmp_path)
    assert "the study's trials ran 2 code versions (" + "; ".join(mixed) + ")" in table.loc["kd"].budget_check
    assert table.loc["baseline"].budget_check == "ok"
    allowed = _table(tmp_path, allow_mixed_code=True)
    assert list(allowed["budget_check"]) == ["ok", "ok"]
    assert allowed.loc["kd"].code.startswith("mixed, allowed: study " + "; ".join(mixed))
    assert any("code versions mixed, allowed" in line for line in flags(allowed))


def test_report_command_on_the_data_case(tmp_path):
    for seed in range(3):
        _row(tmp_path / "f", "baseline", seed, 70.0 + seed)
        _row(tmp_path / "f", "kd", seed, 82.5 + seed, train=B_TRAIN, tune=B_TUNE)
    out = tmp_path / "out"
    assert report_main(["--finals", str(tmp_path / "f"), "--out", str(out)]) == 0
    csv = pd.read_csv(out / "tables" / "comparison.csv").set_index("method")
    assert csv.loc["kd", "budget_check"].startswith("data differs: train")
    assert "data differs" in (out / "tables" / "comparison.md").read_text()
