"""Real finals against their storage: an edited row is refused naming the file; finals composed with
other settings are named; the honest control stays ``ok`` (issue 25, items 1 and 5)."""

import json
import shutil

import optuna
import pandas as pd
import pytest

from bench.config.compose import load_config
from bench.report.__main__ import main as report_main
from bench.tune import study as st
from bench.tune.finals import run_finals
from bench.tune.finals_digest import digest_key
from bench.tune.runner import run_sweep
from bench.utils.io import sha256_file

from ..conftest import sweep_args

pytestmark = pytest.mark.slow  # sweeps and finals end to end


@pytest.fixture(scope="module")
def finals(tmp_path_factory, teachers_dir):
    tmp = tmp_path_factory.mktemp("verified")
    args = sweep_args(tmp, teachers_dir, "tune.trials=2", "tune.final_seeds=2")
    for method in ("baseline", "kd"):
        run_sweep([*args, f"method={method}"])
    run_finals(args)
    return tmp, args


def _report(root, out, *extra):
    return report_main(["--finals", str(root / "finals"), "--out", str(out), "--resamples", "200", *extra])


def _copy(tmp_path, src):
    """A copy of the finals and their storage (the journal path the rows record is absolute)."""
    root = tmp_path / "copy"
    shutil.copytree(src / "finals", root / "finals")
    return root


def test_honest_finals_are_ok(finals, tmp_path):
    root, _ = finals
    assert _report(root, tmp_path) == 0
    table = pd.read_csv(tmp_path / "tables" / "comparison.csv")
    assert list(table["budget_check"]) == ["ok", "ok"]


def test_fault_an_edited_score_is_refused_naming_the_file(finals, tmp_path, capsys):
    """Before: +0.05 on metrics.miou in the kd rows moved Δ and the table said ok."""
    root = _copy(tmp_path, finals[0])
    path = next(p for p in sorted((root / "finals").rglob("result.json")) if "/kd/" in str(p))
    row = json.loads(path.read_text())
    row["metrics"]["miou"] += 0.05
    path.write_text(json.dumps(row, indent=2))
    assert _report(root, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"{path} was changed after its final wrote it" in err
    assert not (tmp_path / "out" / "tables" / "comparison.csv").exists()


def test_fault_edited_tuning_facts_with_a_forged_digest_are_refused(finals, tmp_path, capsys):
    """The tuning block was copied in at final time and never re-checked: now recomputed from the study."""
    root = _copy(tmp_path, finals[0])
    path = next(p for p in sorted((root / "finals").rglob("result.json")) if "/kd/" in str(p))
    row = json.loads(path.read_text())
    row["tuning"]["literature_default_counted"] = not row["tuning"]["literature_default_counted"]
    row["tuning"]["trials"] += 1
    path.write_text(json.dumps(row, indent=2))
    # the forger also rewrites the digest in the storage: the facts still give it away
    storage = st.open_storage(load_config([f"tune.storage={row['tuning']['storage']}", "output_dir=x"]).tune)
    study = optuna.load_study(study_name=row["tuning"]["study"], storage=storage)
    key = digest_key(f"trials{row['tuning']['budget']['trials']}", row["seed"])
    saved = study.user_attrs[key]
    study.set_user_attr(key, [sha256_file(path)])
    try:
        assert _report(root, tmp_path / "out") == 2
        err = capsys.readouterr().err
        assert (
            f"{path}: its tuning facts (" in err and "trials" in err and "literature_default_counted" in err
        )
    finally:
        study.set_user_attr(key, saved)


def test_fault_finals_with_other_iterations_are_named(finals, tmp_path):
    """make final ARGS=train.iterations=... for kd only: the finals are compared key by key."""
    root, args = finals
    other = tmp_path / "other"
    shutil.copytree(root / "finals", other / "finals")
    for folder in (other / "finals").glob("*/*/*/kd"):
        shutil.rmtree(folder)
    run_finals([*args, "train.iterations=4", f"tune.finals_dir={other / 'finals'}"], method="kd")
    assert _report(other, tmp_path / "out") == 0
    kd = pd.read_csv(tmp_path / "out" / "tables" / "comparison.csv").set_index("method").loc["kd"]
    assert "finals differ: train.iterations 4 vs the baseline's 6" in kd.budget_check
