"""A teacher records what it was trained on; the teacher check compares it (issue 25 item 2).

The issue's case: a teacher trained on copy B (copy A with the val images copied into train),
distilled into a student on copy A. Both are the dataset 'folder', so the old check (the dataset's
name) let it through.
"""

import logging
import shutil

import pytest
import torch

from bench.config.compose import load_config
from bench.data.fingerprint import split_fingerprint
from bench.errors import CheckpointError
from bench.paths import sweeps_dir
from bench.preflight import check_teacher
from bench.teacher import teacher_config, train_teacher
from bench.teachers import read_teacher_meta

from .conftest import TINY_TRAIN
from .data.test_fingerprint import FOLDER, copies


@pytest.fixture(scope="module")
def trained_on_b(tmp_path_factory):
    """Copies A, B, A2 and a teacher trained (briefly) on B; returns (a, b, a2, checkpoint)."""
    tmp = tmp_path_factory.mktemp("teacher_data")
    a, b, a2 = copies(tmp)
    cfg = teacher_config(
        [
            *TINY_TRAIN,
            *FOLDER,
            f"dataset.root={b}",
            f"output_dir={tmp / 'run'}",
            f"teachers_dir={tmp / 'teachers'}",
            "train.iterations=2",
        ]
    )
    train_teacher(cfg)
    return a, b, a2, tmp / "teachers" / "folder" / f"{cfg.teacher.name}.pt"


def _kd(root, checkpoint, *overrides):
    return load_config(
        [
            *TINY_TRAIN,
            *FOLDER,
            f"dataset.root={root}",
            "method=kd",
            f"teacher.checkpoint={checkpoint}",
            *overrides,
        ]
    )


def test_the_checkpoint_records_the_fingerprint_of_its_training_split(trained_on_b):
    _, b, _, path = trained_on_b
    data = read_teacher_meta(path)["data"]
    assert list(data) == ["train"]
    assert data["train"]["sha256"] == split_fingerprint(_kd(b, path).dataset, "train")["sha256"]


def test_fault_a_teacher_of_another_copy_of_the_data_passed_the_check(trained_on_b):
    """As it was, the check compared the dataset's name ('folder' = 'folder'); now the data."""
    a, b, _, path = trained_on_b
    cfg = _kd(a, path)
    assert read_teacher_meta(path)["dataset"] == cfg.dataset.name  # all the old check saw
    with pytest.raises(CheckpointError) as err:
        check_teacher(cfg)
    message = str(err.value)
    ours, theirs = split_fingerprint(cfg.dataset, "train"), read_teacher_meta(path)["data"]["train"]
    assert "\n" not in message and "other data" in message and str(path) in message
    assert ours["sha256"][:12] in message and theirs["sha256"][:12] in message
    assert str(a) in message and str(b) in message


def test_the_same_data_at_another_path_passes(trained_on_b, tmp_path):
    _, b, _, path = trained_on_b
    clone = tmp_path / "b_clone"
    shutil.copytree(b, clone)
    check_teacher(_kd(clone, path))


def test_the_studys_teacher_check_refuses_it_too(trained_on_b, tmp_path):
    from bench.tune import study as st
    from bench.tune.space import load_space

    a, _, _, path = trained_on_b
    sweeps = tmp_path / "sweeps"
    shutil.copytree(sweeps_dir(), sweeps)
    shutil.copytree(sweeps / "train" / "synthetic", sweeps / "train" / "folder")
    cfg = _kd(a, path, f"tune.sweeps_dir={sweeps}")
    with pytest.raises(CheckpointError, match="other data"):
        st.study_settings(cfg, load_space(cfg))


def test_an_older_checkpoint_without_a_fingerprint_warns(trained_on_b, tmp_path, caplog):
    """Decided: accepted with a warning naming the file (retrain it to have it checked)."""
    a, _, _, path = trained_on_b
    old = tmp_path / "old.pt"
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    del ckpt["meta"]["data"]
    torch.save(ckpt, old)
    with caplog.at_level(logging.WARNING, logger="bench"):
        check_teacher(_kd(a, old))
    assert str(old) in caplog.text and "no data fingerprint" in caplog.text
