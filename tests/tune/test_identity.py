"""A study on one copy of the data and one code version (issue 25 items 2 and 3).

The data cases use the folder copies of :func:`tests.data.test_fingerprint.copies`: A, B (A with the
val images copied into train) and A2 (A cloned elsewhere, the honest control). The code cases run
the real :func:`bench.tune.study.code_version` on a copy of this checkout's code at another git
commit (a one-line change, like the issue's clone with the KD loss multiplied by 0).
"""

import logging
import os
import shutil
import subprocess
import sys

import pytest

from bench.config.compose import conf_dir
from bench.errors import ConfigError
from bench.tune import study as st
from bench.tune.finals import study_summary
from bench.tune.runner import Sweep, run_sweep
from bench.tune.study import _code

from ..conftest import TINY_TRAIN, sweep_args
from ..data.test_fingerprint import FOLDER, copies

REPO = conf_dir().parent


def _folder_sweep(tmp, root, *overrides):
    """A sweep on the folder copy at ``root`` (the synthetic training space, copied for 'folder')."""
    sweeps = tmp / "sweeps"
    if not sweeps.is_dir():
        shutil.copytree(REPO / "sweeps", sweeps)
        shutil.copytree(sweeps / "train" / "synthetic", sweeps / "train" / "folder")
    return [
        *TINY_TRAIN,
        *FOLDER,
        f"dataset.root={root}",
        f"tune.studies_dir={tmp / 'studies'}",
        f"tune.trials_dir={tmp / 'trials'}",
        f"tune.finals_dir={tmp / 'finals'}",
        f"teachers_dir={tmp / 'teachers'}",
        "tune.pruner=none",
        f"tune.sweeps_dir={sweeps}",
        *overrides,
    ]


def test_fault_a_worker_on_another_copy_of_the_data_joined_the_study(tmp_path):
    """As it was, a worker on copy B joined the study of copy A (both 'folder'); now refused."""
    a, b, _ = copies(tmp_path / "data")
    study = Sweep.open(_folder_sweep(tmp_path, a)).study
    stored = study.user_attrs["settings"]["data"]
    with pytest.raises(ConfigError) as err:
        Sweep.open(_folder_sweep(tmp_path, b))
    message = str(err.value)
    other = st.tuning_data(_cfg(tmp_path, b))
    assert "\n" not in message and "other data" in message
    assert str(a) in message and str(b) in message  # both roots
    assert stored["tune_train"][:12] in message and other["tune_train"]["sha256"][:12] in message
    assert stored["tune_train"] != other["tune_train"]["sha256"]
    assert set(stored) == {"train", "tune_train", "tune_holdout"}
    assert study.user_attrs["data_root"] == str(a)


def _cfg(tmp, root):
    from bench.tune.trial_config import study_config

    return study_config(_folder_sweep(tmp, root))


def test_a_clone_of_the_data_elsewhere_joins_the_same_study(tmp_path):
    a, _, a2 = copies(tmp_path / "data")
    first = Sweep.open(_folder_sweep(tmp_path, a)).study
    again = Sweep.open(_folder_sweep(tmp_path, a2)).study
    assert again.user_attrs["settings"] == first.user_attrs["settings"]


def _other_code(tmp, change=True):
    """This checkout's code (bench/, conf/) copied to a git repository of its own, at a commit that
    changes one line when ``change``; returns the real code version of that copy."""
    dest = tmp / "clone"
    for part in ("bench", "conf", "sweeps"):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"

    def git(*args):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True, env=env)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "the study's code")
    if change:
        loss = dest / "bench" / "methods" / "terms" / "kd.py"
        loss.write_text(loss.read_text() + "\nKD_SCALE = 0.0  # the kd loss multiplied by 0\n")
        git("commit", "-qam", "another commit")
    return dest, _code.code_version(dest / "bench", dest / "conf")


def test_fault_a_worker_of_other_code_joined_the_study(tmp_path, monkeypatch):
    """As it was, a clone at another commit added trials to the study; now refused before its first
    trial, one line naming both versions."""
    args = sweep_args(tmp_path, None, "tune.trials=1")
    study = Sweep.open(args).study
    ours = st.code_version()
    assert study.user_attrs["code"]["sha256"] == ours["sha256"]
    _, theirs = _other_code(tmp_path)
    assert theirs["sha256"] != ours["sha256"] and theirs["commit"] != ours["commit"]
    monkeypatch.setattr(st, "code_version", lambda: theirs)
    with pytest.raises(ConfigError) as err:
        run_sweep([*args, "tune.trials=2"])
    message = str(err.value)
    assert "\n" not in message and ours["label"] in message and theirs["label"] in message
    assert "tune.allow_mixed_code=true" in message
    assert not st.tally(study).counted and not st.tally(study).running  # nothing ran


@pytest.mark.slow  # two sweeps
def test_mixed_code_only_when_allowed_and_recorded(tmp_path, monkeypatch, caplog):
    args = sweep_args(tmp_path, None, "tune.trials=1", "train.iterations=2", "train.schedule.warmup_iters=1")
    run_sweep(args)
    _, theirs = _other_code(tmp_path)
    monkeypatch.setattr(st, "code_version", lambda: theirs)
    with caplog.at_level(logging.WARNING, logger="bench"):
        sweep = run_sweep([*args, "tune.trials=2", "tune.allow_mixed_code=true"])
    assert "allow_mixed_code=true: recorded" in caplog.text
    assert st.mixed_allowed(sweep.study) == [theirs["label"]]
    ran = [t.user_attrs["code"]["sha256"] for t in sweep.study.trials]
    assert ran == [_code.code_version()["sha256"], theirs["sha256"]]  # each trial records its version
    summary = study_summary(sweep.study, sweep.cfg.tune)
    assert summary["code_versions"] == sorted([_code.code_version()["label"], theirs["label"]])


def test_the_same_code_elsewhere_is_the_same_version(tmp_path):
    """The honest control: the same files at another path and commit (no change) are one version."""
    dest, theirs = _other_code(tmp_path, change=False)
    ours = st.code_version()
    assert theirs["sha256"] == ours["sha256"] and str(dest) not in theirs["label"]


@pytest.mark.slow
def test_the_sweep_command_from_a_clone_at_another_commit_is_refused(tmp_path):
    """The issue's case through the command line: exit 2, one line naming both versions, no trial."""
    args = sweep_args(tmp_path, None, "tune.trials=1", "train.iterations=2", "train.schedule.warmup_iters=1")
    run_sweep(args)
    clone, theirs = _other_code(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.sweep", *args, "tune.trials=2"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert theirs["label"] in result.stderr and st.code_version()["label"] in result.stderr
    assert "Traceback" not in result.stderr
    assert len(st.tally(Sweep.open(args).study).counted) == 1
