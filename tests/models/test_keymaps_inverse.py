"""The inverse key maps (official_key_map): a Segmenter's keys written as CIRKD and mmseg save them,
each mapping back onto itself through the converter's own map."""

from __future__ import annotations

import pytest

from bench.convert import preset_config
from bench.models import build_model
from bench.models.keymaps import official_key_map, segmentation_map


@pytest.mark.parametrize(
    ("preset", "codebase", "first", "classifier"),
    [
        ("deeplabv3_r18", "cirkd", "pretrained.conv1.weight", "head.block.4.weight"),
        ("pspnet_r18", "cirkd", "pretrained.conv1.weight", "head.classifier.weight"),
        ("mmseg_pspnet_r18", "mmseg", "backbone.stem.0.weight", "decode_head.conv_seg.weight"),
    ],
)
def test_every_key_has_its_official_name_and_maps_back(preset, codebase, first, classifier):
    cfg = preset_config(preset)
    own = build_model(cfg, 19, role="preset").state_dict()
    official = official_key_map(codebase, cfg.encoder, cfg.arch)
    names = {official(k): k for k in own}
    assert len(names) == len(own)  # one official key per tensor, none shared
    forward = segmentation_map(codebase, cfg.encoder)
    assert all(forward(name) == key for name, key in names.items())
    assert first in names and classifier in names


def test_a_key_without_an_official_place_is_refused():
    official = official_key_map("cirkd", "tu-resnet18", "cirkd_deeplabv3")
    for key in ("net.encoder.model.fc.weight", "something.else"):
        with pytest.raises(KeyError, match="has no place in a cirkd checkpoint"):
            official(key)
    with pytest.raises(ValueError, match="ResNet encoders only"):
        official_key_map("cirkd", "tu-mobilenetv2_100", "cirkd_deeplabv3")
