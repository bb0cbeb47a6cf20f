"""One training step per dataset under its protocol preset, and the panels of a finished run."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bench.config.compose import load_config
from bench.engine.trainer import train_run
from bench.visualize import main as visualize_main

from ..conftest import TINY_TRAIN
from .layouts import WRITERS

# The real protocol presets, shrunk to one CPU step of the tiny student on 32×32 crops.
TINY = [
    *(o for o in TINY_TRAIN if not o.startswith("train.iterations")),
    "train.iterations=1",
    "train.batch_size=2",
    "train.crop_size=[32,32]",
    "train.precision=fp32",
    "train.channels_last=false",
    "train.num_workers=0",
    "student=deeplabv3_tiny",
    "student.encoder_weights=null",
    "dataset.holdout_size=1",
]


def _run(tmp_path, name: str, *overrides: str) -> dict:
    WRITERS[name](tmp_path / "data")
    cfg = load_config(
        [
            f"dataset={name}",
            f"dataset.root={tmp_path / 'data'}",
            "dataset.allow_partial=true",
            "student=deeplabv3_tiny",
            "teacher=deeplabv3_small",
            *TINY,
            f"output_dir={tmp_path / 'run'}",
            *overrides,
        ]
    )
    return train_run(cfg)


@pytest.mark.parametrize(
    ("name", "protocol"),
    [
        ("cityscapes", "cirkd"),
        ("ade20k", "mmseg80k"),  # photometric distortion, cat_max_ratio, keep-ratio base scale
        ("voc", "cirkd"),
        ("camvid", "cirkd"),
    ],
)
def test_one_training_step_per_dataset(tmp_path, name, protocol):
    extra = ["train.augment.base_size=[96,48]"] if protocol == "mmseg80k" else []
    row = _run(tmp_path, name, f"protocol={protocol}", *extra)
    assert row["dataset"] == name and row["cost"]["iterations"] == 1
    assert 0 <= row["metrics"]["miou"] <= 100  # percent
    assert len(row["metrics"]["class_names"]) == row["config"]["dataset"]["num_classes"]


def test_panels_of_a_finished_run(tmp_path, capsys):
    _run(tmp_path, "camvid")
    out = tmp_path / "panels" / "camvid.png"
    assert visualize_main([str(tmp_path / "run"), "--n", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 300
    assert json.loads((tmp_path / "run" / "result.json").read_text())["student"] == "deeplabv3_tiny"


def test_panels_refuse_an_unfinished_run(tmp_path, capsys):
    assert visualize_main([str(tmp_path)]) == 2
    assert "not a finished run" in capsys.readouterr().err
