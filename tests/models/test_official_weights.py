"""A literature preset trained from random init on real data says so, once, naming the file."""

import logging
import subprocess
import sys

import pytest

from bench.config.compose import load_config
from bench.models import official_weights
from bench.preflight import warn_random_init


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(official_weights, "_warned", set())


def _warnings(caplog, *overrides, role="student"):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bench"):
        warn_random_init(load_config(list(overrides)), role)
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    ("overrides", "file"),
    [
        (["dataset=cityscapes"], "resnet18-imagenet.pth"),
        (["dataset=voc", "student=deeplabv3_mbv2"], "mobilenetv2-imagenet.pth"),
        (["dataset=ade20k", "student=mmseg_pspnet_r18"], "resnet18_v1c-b5776b93.pth"),
    ],
)
def test_literature_preset_from_random_init_on_real_data_warns_once(caplog, overrides, file):
    (line,) = _warnings(caplog, *overrides)
    assert file in line and "student.encoder_weights=PATH" in line and "random init" in line
    assert "\n" not in line
    assert _warnings(caplog, *overrides) == []  # once


def test_a_teacher_run_names_the_teacher_override(caplog):
    from bench.teacher import teacher_config

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bench"):
        warn_random_init(teacher_config(["dataset=cityscapes"]), "teacher")
    (line,) = [r.getMessage() for r in caplog.records]
    assert "resnet101-imagenet.pth" in line and "teacher.encoder_weights=PATH" in line


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset=synthetic", "student=deeplabv3_r18"],  # synthetic data: random init is the point
        ["dataset=cityscapes", "student.encoder_weights=/data/resnet18-imagenet.pth"],  # weights given
        ["dataset=cityscapes", "student=deeplabv3_r18_tv", "student.encoder_weights=null"],  # not CIRKD's
    ],
)
def test_no_warning_otherwise(caplog, overrides):
    assert _warnings(caplog, *overrides) == []


def test_the_train_command_prints_it_before_anything_else(tmp_path):
    """Through the user's command: the warning line, then the data error (exit 2)."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.train",
            "dataset=cityscapes",
            f"dataset.root={tmp_path}/none",
            f"output_dir={tmp_path}/run",
            "device=cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if "encoder_weights=PATH" in line]
    assert len(lines) == 1 and "resnet18-imagenet.pth" in lines[0]
