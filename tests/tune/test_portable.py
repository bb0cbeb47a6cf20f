"""Portable studies: the same command from another clone (another directory) joins the same study."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config.compose import conf_dir, load_config
from bench.tune import study as st
from bench.tune.runner import Sweep, run_sweep
from bench.tune.space import load_space

from ..conftest import sweep_args
from .test_sweep import CALLS

pytestmark = pytest.mark.slow  # sweeps from two clones

REPO = conf_dir().parent


def _clone(dest: Path) -> Path:
    """The parts of a checkout a sweep reads, copied to another directory."""
    for part in ("bench", "conf", "sweeps"):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_fault_settings_held_absolute_paths(tmp_path, teachers_dir):
    """As it was, the settings stored the sweep files' absolute paths: another clone was refused."""
    other = _clone(tmp_path / "other")
    here, there = (
        load_config(sweep_args(tmp_path, teachers_dir, "method=kd", f"tune.sweeps_dir={root}"))
        for root in (REPO / "sweeps", other / "sweeps")
    )
    a, b = load_space(here), load_space(there)
    assert a.files != b.files  # the old settings differed in exactly this
    assert a.content() == b.content() and a.relative_files() == [
        "sweeps/train/synthetic/default.yaml",
        "sweeps/method/kd.yaml",
    ]
    assert st.study_settings(here, a) == st.study_settings(there, b)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["journal", "database"])
def test_two_clones_share_one_study(tmp_path, storage):
    shared = tmp_path / "shared"
    shared.mkdir()
    url = [f"tune.storage=sqlite:///{shared / 'studies.db'}"] if storage == "database" else []
    common = [f"tune.studies_dir={shared}", *url, "tune.trials=3"]
    # clone 1 (this checkout) starts the study and is interrupted during its second trial
    CALLS.clear()
    fault = "+method.terms.fault={term: _test_fault, kind: interrupt, calls: [8]}"
    with pytest.raises(KeyboardInterrupt):
        run_sweep([*sweep_args(tmp_path / "one", None, fault), *common])
    # clone 2, in another directory, runs the same command (without the test-only fault) and finishes it
    two = _clone(tmp_path / "two")
    env = {**os.environ, "PYTHONPATH": str(two), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.sweep", *sweep_args(tmp_path / "two", None), *common],
        cwd=two,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "other settings" not in result.stderr
    study = Sweep.open([*sweep_args(tmp_path / "one", None), *common]).study
    counted = st.counted_by_slot(study)
    assert len(counted) == 3 and st.literature_default(study) is not None
    owners = {t.user_attrs["owner"]["pid"] for t in counted}
    assert len(owners) == 2 and os.getpid() in owners  # trials of both clones count in one study
    assert (tmp_path / "two" / "trials").is_dir()
