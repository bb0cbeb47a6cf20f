"""The reference codebases' networks, module for module: parameter counts equal the official ones.

The counts were measured by building the official models from their own code with 19 classes
(winycg/CIRKD@2d8ad0f ``get_deeplabv3``/``get_psp``/``get_deeplabv3_mobile``; mmsegmentation 1.2.2
``MODELS.build`` of the named configs with BN for SyncBN), beside the project.
"""

import pytest
import torch
import torch.nn.functional as F

from bench.config.compose import load_config
from bench.methods.objective import cross_entropy
from bench.models import build_model

OFFICIAL_PARAMETERS = {
    # CIRKD 2d8ad0f
    ("student", "deeplabv3_r18"): 13_607_974,
    ("teacher", "deeplabv3_r101"): 61_118_950,
    ("student", "pspnet_r18"): 12_919_334,
    ("student", "deeplabv3_mbv2"): 3_233_171,
    # mmsegmentation 1.2.2, configs/{deeplabv3,pspnet}/*_r{18,50,101}-d8_4xb2-80k_cityscapes-512x1024.py
    ("student", "mmseg_deeplabv3_r18"): 13_986_374,
    ("teacher", "mmseg_deeplabv3_r50"): 68_113_030,
    ("teacher", "mmseg_deeplabv3_r101"): 87_105_158,
    ("student", "mmseg_pspnet_r18"): 12_790_086,
    ("teacher", "mmseg_pspnet_r50"): 48_975_494,
    ("teacher", "mmseg_pspnet_r101"): 67_967_622,
}


def _model(group: str, name: str, classes: int = 19):
    return build_model(
        getattr(load_config([f"{group}={name}", f"{group}.encoder_weights=null"]), group), classes
    )


@pytest.mark.parametrize(("group", "name"), list(OFFICIAL_PARAMETERS))
def test_parameter_count_equals_the_official_model(group, name):
    model = _model(group, name)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMETERS[(group, name)]


def _dilations(model, prefix):
    return {
        n.removeprefix(prefix): m.dilation[0]
        for n, m in model.named_modules()
        if n.startswith(prefix) and isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    }


def test_cirkd_dilation_first_block_one_step_lower():
    d = _dilations(_model("student", "deeplabv3_r18"), "net.encoder.model.")
    # CIRKD BasicBlockV1b: conv1 takes the block's dilation, conv2 the stage's ("previous_dilation")
    assert [d[f"layer3.{i}.conv{j}"] for i in (0, 1) for j in (1, 2)] == [1, 2, 2, 2]
    assert [d[f"layer4.{i}.conv{j}"] for i in (0, 1) for j in (1, 2)] == [2, 4, 4, 4]
    d = _dilations(_model("teacher", "deeplabv3_r101"), "net.encoder.model.")
    assert (d["layer3.0.conv2"], d["layer3.1.conv2"], d["layer4.0.conv2"], d["layer4.1.conv2"]) == (
        1,
        2,
        2,
        4,
    )


def test_mmseg_basic_block_dilates_its_first_conv_only():
    d = _dilations(_model("student", "mmseg_pspnet_r18"), "net.encoder.model.")
    assert [d[f"layer3.{i}.conv{j}"] for i in (0, 1) for j in (1, 2)] == [1, 1, 2, 1]
    assert [d[f"layer4.{i}.conv{j}"] for i in (0, 1) for j in (1, 2)] == [2, 1, 4, 1]


def test_stems():
    cirkd = _model("student", "deeplabv3_r18").net.encoder.model.conv1
    mmseg = _model("student", "mmseg_deeplabv3_r18").net.encoder.model.conv1
    assert [c.out_channels for c in cirkd if isinstance(c, torch.nn.Conv2d)] == [64, 64, 128]
    assert [c.out_channels for c in mmseg if isinstance(c, torch.nn.Conv2d)] == [32, 32, 64]


def test_cirkd_network_reads_rgb_uint8_as_bgr_minus_its_mean():
    torch.manual_seed(0)
    model = _model("student", "deeplabv3_mbv2", 5).eval()
    images = torch.randint(0, 256, (1, 3, 32, 48), dtype=torch.uint8)
    mean_bgr = torch.tensor([104.00698793, 116.66876762, 122.67891434]).view(1, 3, 1, 1)
    with torch.no_grad():
        taps = model(images)
        by_hand = model.net.segmentation_head[0](
            model.net.decoder(model.net.encoder(images.flip(1) - mean_bgr))
        )
    torch.testing.assert_close(taps.logits_low, by_hand, rtol=1e-5, atol=1e-5)
    # and resizes its logits with align_corners=True, as CIRKD's loss and evaluation
    expected = F.interpolate(taps.logits_low, size=(32, 48), mode="bilinear", align_corners=True)
    torch.testing.assert_close(taps.logits, expected)
    assert not _model("student", "mmseg_pspnet_r18", 5).align_corners


def test_feature_taps_have_the_papers_widths():
    """Feature KD terms see 128-d (R18, MBV2) and 256-d (R101) features, as in the papers."""
    assert _model("student", "deeplabv3_r18").tap_channels()["feat"] == 128
    assert _model("student", "deeplabv3_mbv2").tap_channels()["feat"] == 128
    assert _model("teacher", "deeplabv3_r101").tap_channels()["feat"] == 256
    assert _model("student", "deeplabv3_r18_tv").tap_channels()["feat"] == 256  # today's preset, renamed


def test_cwd_feat_weight_follows_the_default_pair_widths():
    # CIRKD's 50 divides by B·D_s; canonical divides by B·D_t: 50·D_t/D_s with D_s=128, D_t=256
    cfg = load_config(["dataset=cityscapes", "method=cwd_feat"])
    s, t = _model("student", cfg.student.name), _model("teacher", cfg.teacher.name)
    d_s, d_t = s.tap_channels()["feat"], t.tap_channels()["feat"]
    assert cfg.method.terms["cwd_feat"].weight == 50.0 * d_t / d_s


def test_real_datasets_default_to_their_protocols_networks():
    c = load_config(["dataset=cityscapes"])
    assert (c.student.name, c.teacher.name, c.student.arch) == (
        "deeplabv3_r18",
        "deeplabv3_r101",
        "cirkd_deeplabv3",
    )
    c = load_config(["dataset=cityscapes", "protocol=mmseg80k"])
    assert (c.student.name, c.teacher.name, c.train.ce_denominator) == (
        "mmseg_pspnet_r18",
        "mmseg_pspnet_r101",
        "all",
    )
    c = load_config(["dataset=voc", "protocol=mmseg80k", "student=deeplabv3_r18"])
    assert c.student.name == "deeplabv3_r18"  # the command line still wins


def test_ce_denominator_all_divides_by_every_pixel():
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    labels[0] = 255  # 16 of 32 pixels ignored
    valid = cross_entropy(logits, labels, 255)
    everything = cross_entropy(logits, labels, 255, denominator="all")
    by_hand = F.cross_entropy(logits, labels, ignore_index=255, reduction="sum")
    torch.testing.assert_close(valid, by_hand / 16)
    torch.testing.assert_close(everything, by_hand / 32)
