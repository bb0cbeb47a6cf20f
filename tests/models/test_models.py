"""Every model preset builds offline and exposes the taps KD needs with the documented shapes."""

import pytest
import torch

from bench.config.compose import conf_dir, load_config
from bench.config.schema import ModelConfig
from bench.models import build_model, count_parameters

PRESETS = [("student", p.stem) for p in sorted((conf_dir() / "student").glob("*.yaml"))] + [
    ("teacher", p.stem) for p in sorted((conf_dir() / "teacher").glob("*.yaml"))
]


def _preset(group: str, name: str) -> ModelConfig:
    cfg = load_config([f"{group}={name}", f"{group}.encoder_weights=null"])
    return getattr(cfg, group)


@pytest.mark.parametrize(("group", "name"), PRESETS)
def test_taps_of_every_preset(group, name):
    cfg = _preset(group, name)
    model = build_model(cfg, num_classes=5).eval()
    h, w = 64, 96
    with torch.no_grad():
        taps = model(torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8))
    # DeepLabV3+ and SegFormer decode at 1/4 (SegFormer's output_stride is its input multiple, 32)
    head_stride = 4 if cfg.arch in ("deeplabv3plus", "segformer") else cfg.output_stride
    channels = model.tap_channels()
    assert taps.logits_low.shape == (2, 5, h // head_stride, w // head_stride)
    assert taps.logits.shape == (2, 5, h, w)
    assert taps.feat.shape[:2] == (2, channels["feat"])
    assert taps.feat.shape[-2:] == taps.logits_low.shape[-2:]  # the classifier is a 1x1 conv on feat
    assert [s.shape[1] for s in taps.stages] == channels["stages"]
    # highest resolution first; a MiT encoder has no stride-2 stage (its empty slot is left out)
    assert taps.stages[0].shape[-1] == w // (4 if cfg.arch == "segformer" else 2)
    if cfg.aux_head:
        aux_stage = taps.stages[cfg.aux_stage]  # stages excludes the input; negative index is the same
        assert taps.aux_logits.shape == (2, 5, *aux_stage.shape[-2:])
    else:
        assert taps.aux_logits is None


def test_literature_presets_have_the_papers_structure():
    r18 = _preset("student", "deeplabv3_r18")
    model = build_model(r18, num_classes=19)
    assert model.tap_channels()["stages"][-2] == 256 and model.aux_head is not None  # aux on layer3
    psp = build_model(_preset("student", "pspnet_r18"), num_classes=19).eval()
    with torch.no_grad():
        taps = psp(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    assert taps.stages[-1].shape[1:] == (512, 8, 8)  # all five stages run, dilated to OS8


def test_active_parameters_exclude_unused_stages():
    # smp's own 3-stage PSPNet keeps layer3/layer4 in the module; they never run.
    cfg = _preset("student", "pspnet_r18")
    dilated = build_model(cfg, num_classes=19)
    total, active = count_parameters(dilated, (64, 64))
    assert total == active  # our PSPNet runs every stage

    import segmentation_models_pytorch as smp

    from bench.models.segmenter import Segmenter

    shallow = Segmenter(
        smp.PSPNet("resnet18", encoder_weights=None, classes=19), None, -2, 8, cfg.mean, cfg.std
    )
    total, active = count_parameters(shallow, (64, 64))
    assert total > 11e6 and active < 2e6


def test_aux_stage_out_of_range_is_a_config_error():
    from bench.errors import ConfigError

    cfg = _preset("student", "deeplabv3_tiny")
    cfg.aux_stage = 9
    with pytest.raises(ConfigError, match="aux_stage"):
        build_model(cfg, 3)


@pytest.mark.slow
def test_local_encoder_weights_are_recorded_with_their_hash(tmp_path):
    from bench.engine.trainer import train_run
    from bench.utils.io import sha256_file

    from ..conftest import tiny_config

    cfg = _preset("student", "deeplabv3_tiny")
    torch.save(build_model(cfg, 7).net.encoder.state_dict(), tmp_path / "enc.pth")
    row = train_run(tiny_config(tmp_path, f"student.encoder_weights={tmp_path / 'enc.pth'}"))
    assert row["model"]["encoder_weights"] == str(tmp_path / "enc.pth")
    assert row["model"]["encoder_weights_sha256"] == sha256_file(tmp_path / "enc.pth")


def test_local_encoder_weights_load(tmp_path):
    cfg = _preset("student", "deeplabv3_tiny")
    source = build_model(cfg, 3)
    torch.save(source.net.encoder.state_dict(), tmp_path / "enc.pth")
    cfg.encoder_weights = str(tmp_path / "enc.pth")
    loaded = build_model(cfg, 3)
    for (k, a), b in zip(
        source.net.encoder.state_dict().items(), loaded.net.encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
