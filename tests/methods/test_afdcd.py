"""Af-DCD against values computed by hand; masks, crop rule and shape errors."""

import math

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.methods import TermContext, build_term
from bench.methods.terms.afdcd import contrast_grid, omni_contrastive_loss, to_contrast_rows
from bench.models import Taps


def _taps(x: torch.Tensor) -> Taps:
    return Taps(stages=[x], feat=None, logits_low=x[:, :1], aux_logits=None, size=(8, 8))


def _ctx(d_s=2, d_t=2, hw=(1, 2)):
    return TermContext(
        num_classes=2, student_channels={"stages": [d_s]}, teacher_channels={"stages": [d_t]}, feature_size=hw
    )


def test_contrastive_loss_by_hand():
    # B=1, C=2 channels in M=2 groups of 1, a 1×1 patch: rows (position 0, group 0) and (0, 1).
    # Student values (0, 1), teacher (0, 3): L1 distances |s_m − t_m'|.
    s = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    t = torch.tensor([0.0, 3.0]).view(1, 2, 1, 1)
    tau = 0.5
    # row 0 (s=0): positive −|0−0|, negative (group 1) −|0−3| ; row 1 (s=1): positive −|1−3|, negative −|1−0|
    ce0 = -(-0 / tau) + math.log(math.exp(0 / tau) + math.exp(-3 / tau))
    ce1 = -(-2 / tau) + math.log(math.exp(-2 / tau) + math.exp(-1 / tau))
    loss = omni_contrastive_loss(s, t, tau, groups=2, patch=1)
    assert loss.item() == pytest.approx((ce0 + ce1) / 1, rel=1e-6)  # / (H·W = 1) / B = 1


def test_rows_are_position_major_then_group():
    x = torch.arange(8.0).view(1, 4, 1, 2)  # C=4 in M=2 groups of 2; 1×2 map, patch 1
    rows = to_contrast_rows(x, patch=1, groups=2)
    # patch (0, 0): position 0 → groups (c0, c1), (c2, c3)
    assert rows.shape == (2, 2, 2)
    assert rows[0].tolist() == [[0.0, 2.0], [4.0, 6.0]] and rows[1].tolist() == [[1.0, 3.0], [5.0, 7.0]]


def test_feature_term_by_hand_with_identity_projector():
    term = build_term("afdcd", _ctx(), ctr_weight=0.0, fd_weight=1.0, mask="center", groups=1)
    term.projector = nn.Identity()
    s = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    t = torch.zeros_like(s)
    # 1×2 map: the centre third (h//3:2h//3 = 0:0) is empty, nothing masked; sum of squares / B
    assert term(_taps(s), _taps(t)).item() == pytest.approx(1 + 4 + 9 + 16, rel=1e-6)


def test_random_mask_zeroes_the_released_fraction():
    term = build_term("afdcd", _ctx(hw=(64, 64)), groups=1)
    torch.manual_seed(0)
    kept = term.masked(torch.ones(4, 1, 64, 64))
    assert kept.mean().item() == pytest.approx(0.25, abs=0.01)


def test_center_mask_zeroes_the_middle_third():
    term = build_term("afdcd", _ctx(hw=(6, 6)), groups=1, mask="center")
    kept = term.masked(torch.ones(1, 1, 6, 6))[0, 0]
    assert kept[2:4, 2:4].sum() == 0 and kept.sum() == 32


def test_contrast_grid_pools_only_into_whole_patches_then_crops():
    assert contrast_grid(64, 128, 4, 4) == (4, 16, 32)  # CIRKD shape: pooled 16×32
    assert contrast_grid(64, 64, 4, 4) == (4, 16, 16)  # ADE20K, VOC, COCO-Stuff 512×512
    # CamVid 360×360: the release's camvid branch does not pool and crops 45×45 to 44×44 (pooling
    # would leave 11×11, which its Cityscapes branch cannot cut into 4×4 patches)
    assert contrast_grid(45, 45, 4, 4) == (1, 44, 44)
    assert contrast_grid(8, 8, 4, 4) == (1, 8, 8)  # 2×2 pooled holds no patch: unpooled
    assert contrast_grid(3, 8, 4, 4) == (1, 0, 8)  # less than one patch tall


def test_teacher_width_not_a_multiple_of_groups_is_refused():
    with pytest.raises(
        ConfigError, match="afdcd: the teacher's last stage has 6 channels, not a multiple of groups=16"
    ):
        build_term("afdcd", _ctx(d_t=6, hw=(8, 8)))


def test_map_smaller_than_a_patch_is_refused_at_build():
    with pytest.raises(
        ConfigError, match=r"afdcd: the teacher's last stage is 2×2, smaller than one 4×4 patch"
    ):
        build_term("afdcd", _ctx(hw=(2, 2)), groups=1)


def test_adapter_only_when_widths_differ():
    assert isinstance(build_term("afdcd", _ctx(hw=(8, 8)), groups=1).align, nn.Identity)
    assert isinstance(build_term("afdcd", _ctx(d_s=3, hw=(8, 8)), groups=1).align, nn.Conv2d)
