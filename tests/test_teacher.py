"""Teacher checkpoints: stored by key, loaded by key or path, mismatches are clear errors."""

import shutil

import pytest
import torch

from bench.engine.trainer import Trainer
from bench.errors import CheckpointError
from bench.teachers import teacher_path

from .conftest import tiny_config

pytestmark = pytest.mark.slow  # trains and stores teachers


def test_teacher_is_stored_under_its_key_and_frozen_when_loaded(tmp_path, teachers_dir):
    cfg = tiny_config(tmp_path, "method=kd", f"teachers_dir={teachers_dir}")
    assert teacher_path(cfg) == teachers_dir / "synthetic" / "deeplabv3_small.pt"
    trainer = Trainer(cfg)
    model = trainer.teacher.model
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    taps = trainer.teacher(images)
    assert not taps.logits_low.is_inference()  # usable in autograd-saving losses
    # the student's optimizer never sees teacher parameters
    teacher_ids = {id(p) for p in model.parameters()}
    assert not teacher_ids & {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}


def test_teacher_by_explicit_path(tmp_path, teachers_dir):
    path = tmp_path / "my_teacher.pt"
    shutil.copy(teachers_dir / "synthetic" / "deeplabv3_small.pt", path)
    trainer = Trainer(tiny_config(tmp_path, "method=kd", f"teacher.checkpoint={path}"))
    assert trainer.teacher_info["path"] == str(path)


def test_missing_teacher_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match="make teacher DATASET=synthetic TEACHER=deeplabv3_small"):
        Trainer(tiny_config(tmp_path, "method=kd", f"teachers_dir={tmp_path / 'none'}"))


def test_baseline_never_needs_a_teacher(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, f"teachers_dir={tmp_path / 'none'}"))
    assert trainer.teacher is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("teacher.encoder_kwargs.channels=[8,16,32,64]", "teacher.encoder_kwargs"),  # other architecture
        ("teacher.output_stride=16", "teacher.output_stride"),
        ("dataset.shapes=[disk,square]", "classes"),  # 5 classes instead of 7
    ],
)
def test_mismatching_teacher_is_refused(tmp_path, teachers_dir, override, message):
    extra = ["dataset.num_classes=5"] if "shapes" in override else []
    cfg = tiny_config(tmp_path, "method=kd", f"teachers_dir={teachers_dir}", override, *extra)
    with pytest.raises(CheckpointError, match=message):
        Trainer(cfg)


def test_unreadable_teacher_file(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not readable"):
        Trainer(tiny_config(tmp_path, "method=kd", f"teacher.checkpoint={path}"))
