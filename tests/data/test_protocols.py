"""Protocol presets (protocol=cirkd | mmseg80k) compose for every dataset with the documented values."""

from __future__ import annotations

import dataclasses

import pytest

from bench.config.compose import load_config
from bench.config.schema import Precision
from bench.errors import ConfigError
from bench.teacher import teacher_config

DATASETS = ("cityscapes", "ade20k", "voc", "camvid", "coco_stuff164k")

# CIRKD (winycg/CIRKD train_baseline.py defaults and train_scripts/*): the crop per dataset.
CIRKD_CROPS = {
    "cityscapes": [512, 1024], "ade20k": [512, 512], "voc": [512, 512], "camvid": [360, 360],
    "coco_stuff164k": [512, 512],
}  # fmt: skip
# mmseg configs: (batch = GPUs × images per GPU, crop, RandomResize base scale).
MMSEG = {
    "cityscapes": (8, [512, 1024], [2048, 1024]),
    "ade20k": (16, [512, 512], [2048, 512]),
    "voc": (16, [512, 512], [2048, 512]),
    "coco_stuff164k": (16, [512, 512], [2048, 512]),
}


@pytest.mark.parametrize("dataset", DATASETS)
def test_cirkd_protocol(dataset):
    cfg = load_config([f"dataset={dataset}", "protocol=cirkd", "eval=slide"])
    t = cfg.train
    assert (t.iterations, t.batch_size, t.crop_size) == (40000, 16, CIRKD_CROPS[dataset])
    assert (t.optimizer.name, t.optimizer.lr, t.optimizer.momentum) == ("sgd", 0.02, 0.9)
    assert (t.optimizer.weight_decay, t.optimizer.head_lr_mult, t.optimizer.nesterov) == (1e-4, 1.0, False)
    assert (t.schedule.name, t.schedule.power, t.schedule.warmup_iters, t.schedule.min_lr) == (
        "poly",
        0.9,
        0,
        0,
    )
    a = t.augment
    assert (a.scale_range, a.scale_step, a.base_size) == ([0.5, 2.0], 0.1, None)
    assert a.hflip and (a.jitter, a.cat_max_ratio, a.photometric) == (0.0, 1.0, False)
    assert t.aux_weight == 0.4 and t.grad_clip is None
    # Whole image, single scale, no flip, whatever eval preset was picked.
    assert (cfg.eval.mode, cfg.eval.flip, cfg.eval.crop_size, cfg.eval.stride) == ("whole", False, None, None)


@pytest.mark.parametrize("dataset", sorted(MMSEG))
def test_mmseg80k_protocol(dataset):
    t = load_config([f"dataset={dataset}", "protocol=mmseg80k"]).train
    batch, crop, base = MMSEG[dataset]
    assert (t.iterations, t.batch_size, t.crop_size, t.augment.base_size) == (80000, batch, crop, base)
    assert (t.optimizer.lr, t.optimizer.momentum, t.optimizer.weight_decay) == (0.01, 0.9, 5e-4)
    assert (t.schedule.name, t.schedule.power, t.schedule.min_lr) == ("poly", 0.9, 1e-4)
    a = t.augment
    assert (a.scale_range, a.scale_step, a.cat_max_ratio, a.photometric, a.hflip) == (
        [0.5, 2.0],
        0.0,
        0.75,
        True,
        True,
    )
    assert t.aux_weight == 0.4


def test_mmseg80k_refuses_camvid():
    with pytest.raises(ConfigError, match="not defined for camvid"):
        load_config(["dataset=camvid", "protocol=mmseg80k"])


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_default_protocol_is_cirkd(dataset):
    """A real dataset's defaults are CIRKD's protocol but for precision: bf16 by default (speed on
    GPUs), fp32 as CIRKD under protocol=cirkd (docs/6_datasets.md)."""
    default = dataclasses.asdict(load_config([f"dataset={dataset}"]).train)
    cirkd = dataclasses.asdict(load_config([f"dataset={dataset}", "protocol=cirkd"]).train)
    assert (default.pop("precision"), cirkd.pop("precision")) == (Precision.bf16, Precision.fp32)
    assert default == cirkd


@pytest.mark.parametrize("dataset", DATASETS)
def test_teachers_use_the_protocols_too(dataset):
    cfg = teacher_config([f"dataset={dataset}", "teacher=deeplabv3_r101", "protocol=cirkd"])
    assert cfg.train.crop_size == CIRKD_CROPS[dataset] and cfg.student.name == "deeplabv3_r101"


def test_command_line_overrides_beat_the_protocol():
    cfg = load_config(
        ["dataset=cityscapes", "protocol=cirkd", "train.crop_size=[256,512]", "train.iterations=5"]
    )
    assert cfg.train.crop_size == [256, 512] and cfg.train.iterations == 5


def test_other_datasets_keep_their_preset_crop():
    cfg = load_config(["dataset=folder", "dataset.num_classes=3", "protocol=cirkd"])
    assert cfg.train.crop_size == [512, 512] and cfg.train.iterations == 40000
    assert load_config(["protocol=cirkd"]).train.crop_size is None  # synthetic: whole images


def test_no_protocol_by_default():
    assert load_config([]).train.iterations == load_config(["train=synthetic"]).train.iterations


def test_unknown_protocol_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"cirkd.*mmseg80k"):
        load_config(["protocol=nope"])


def test_mobilenet_student_preset():
    s = load_config(["student=deeplabv3_mbv2_smp", "dataset=cityscapes"]).student
    assert (s.arch, s.encoder, s.output_stride, s.aux_head) == ("deeplabv3", "tu-mobilenetv2_100", 8, False)
    assert s.decoder_kwargs == {"decoder_channels": 128, "decoder_atrous_rates": [12, 24, 36]}


# CIRKD v2 (winycg/CIRKD @dab64db scripts/train_baseline/*): (batch, lr, crop), 80k iterations.
CIRKD_V2 = {
    "cityscapes": (8, 0.01, [512, 1024]),
    "ade20k": (16, 0.02, [512, 512]),
    "voc": (16, 0.02, [512, 512]),
    "coco_stuff164k": (16, 0.02, [512, 512]),
}


@pytest.mark.parametrize("dataset", sorted(CIRKD_V2))
def test_cirkd_v2_protocol(dataset):
    cfg = load_config([f"dataset={dataset}", "protocol=cirkd_v2", "eval=slide"])
    t = cfg.train
    batch, lr, crop = CIRKD_V2[dataset]
    assert (t.iterations, t.batch_size, t.optimizer.lr, t.crop_size) == (80000, batch, lr, crop)
    assert (t.optimizer.momentum, t.optimizer.weight_decay, t.schedule.power, t.aux_weight) == (
        0.9,
        1e-4,
        0.9,
        0.4,
    )
    assert (t.augment.scale_range, t.augment.scale_step, t.augment.photometric) == ([0.5, 2.0], 0.1, False)
    assert (cfg.eval.mode, cfg.eval.flip) == ("whole", False)


def test_cirkd_v2_refuses_camvid():
    with pytest.raises(ConfigError, match="cirkd_v2 is not defined for camvid"):
        load_config(["dataset=camvid", "protocol=cirkd_v2"])
