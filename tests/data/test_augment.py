"""The protocol augmentations: discrete and base-relative scales, cat_max_ratio crops, photometric
distortion; image and label stay aligned on every dataset's fixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from bench.config.compose import load_config
from bench.config.schema import AugmentConfig
from bench.data import build_split
from bench.data.pipeline import (
    AugmentedView,
    _hsv_to_rgb,
    _nearest_window,
    _rgb_to_hsv,
    _scale_saturation,
    augment,
    photometric_distortion,
)

from .layouts import RAWS, WRITERS, ungrey


def _sample(h: int = 40, w: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    label = torch.zeros(h, w, dtype=torch.int64)
    label[: h // 2, : w // 3] = 1
    return torch.full((3, h, w), 100, dtype=torch.uint8), label


def test_discrete_scale_steps_give_cirkd_factors():
    image, label = _sample(40, 60)
    cfg = AugmentConfig(scale_range=[0.5, 2.0], scale_step=0.1, hflip=False)
    allowed = {(round(40 * (5 + k) / 10), round(60 * (5 + k) / 10)) for k in range(16)}
    sizes = {tuple(augment(image, label, cfg, None, 255, seed)[1].shape) for seed in range(200)}
    assert sizes <= allowed and len(sizes) >= 12  # all 16 factors are reachable
    assert {(20, 30), (80, 120)} <= sizes  # both ends included


def test_base_size_rescales_like_mmseg_keep_ratio():
    image, label = _sample(100, 300)
    cfg = AugmentConfig(scale_range=[1.0, 1.0], base_size=[2048, 512], hflip=False)
    # min(2048 / 300, 512 / 100) = 5.12 → 512 × 1536
    assert augment(image, label, cfg, None, 255, 0)[1].shape == (512, 1536)
    cfg = AugmentConfig(scale_range=[0.5, 0.5], base_size=[64, 32], hflip=False)
    # ratio 0.5: box (32, 16) → min(32 / 300, 16 / 100) = 0.1067 → 11 × 32
    assert augment(image, label, cfg, None, 255, 0)[1].shape == (11, 32)


def test_cat_max_ratio_redraws_crops_dominated_by_one_class():
    label = torch.zeros(64, 64, dtype=torch.int64)
    label[:16, :16] = 1  # class 1 only in one corner
    image = (label * 200).to(torch.uint8).expand(3, 64, 64).contiguous()

    def mixed_fraction(ratio: float) -> float:
        cfg = AugmentConfig(hflip=False, cat_max_ratio=ratio)
        crops = [augment(image, label, cfg, [24, 24], 255, seed) for seed in range(100)]
        for im, lb in crops:
            assert torch.equal((im[0] > 100).long(), lb)  # still aligned
        return sum(bool((lb == 1).any()) and (lb == 1).float().mean() < 0.75 for _, lb in crops) / 100

    assert mixed_fraction(0.75) > 2 * mixed_fraction(1.0)


def test_photometric_distortion_leaves_labels_and_geometry_alone():
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(48), indexing="ij")
    image = torch.stack([yy * 7, xx * 5, (yy + xx) * 3]).to(torch.uint8)
    label = yy * 100 + xx
    plain = AugmentConfig(scale_range=[0.5, 2.0], scale_step=0.1, hflip=True)
    distorted = AugmentConfig(scale_range=[0.5, 2.0], scale_step=0.1, hflip=True, photometric=True)
    changed = 0
    for seed in range(20):
        im_a, lb_a = augment(image, label, plain, [24, 24], 255, seed)
        im_b, lb_b = augment(image, label, distorted, [24, 24], 255, seed)
        assert torch.equal(lb_a, lb_b) and im_b.dtype == torch.uint8 and im_b.shape == im_a.shape
        changed += not torch.equal(im_a, im_b)
        assert torch.equal(im_b, augment(image, label, distorted, [24, 24], 255, seed)[0])  # seeded
    assert changed >= 15  # 1 - 1/16 of the samples get at least one operation


def test_photometric_operations_match_their_definitions():
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    x = image.float()
    h, s, v = _rgb_to_hsv(x)
    assert torch.allclose(_hsv_to_rgb(h, s, v), x, atol=1e-3)
    for factor in (0.5, 1.2, 1.5):  # the RGB shortcut for saturation equals the HSV definition
        assert torch.allclose(
            _scale_saturation(x, factor), _hsv_to_rgb(h, (s * factor).clamp(0, 1), v), atol=1e-3
        )
    red = torch.tensor([255.0, 0.0, 0.0])[:, None, None]
    h, s, v = _rgb_to_hsv(red)
    assert _hsv_to_rgb(h + 18 / 180, s, v).flatten().tolist() == pytest.approx([255, 153, 0])  # +36°
    grey = torch.full((3, 4, 4), 77, dtype=torch.uint8)
    for seed in range(30):
        out = photometric_distortion(grey, torch.Generator().manual_seed(seed))
        # Saturation and hue leave grey alone: channels stay equal, only brightness/contrast act.
        assert (out[0] == out[1]).all() and (out[1] == out[2]).all()
        assert abs(int(out[0, 0, 0]) - 77) <= 32 + 0.5 * 109 + 1


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_protocol_augmentation_keeps_each_dataset_aligned(tmp_path, name):
    # Fixture images encode their raw labels: after the dataset's default (CIRKD) augmentation, every
    # labelled pixel away from a block edge shows the grey level of its own training id.
    WRITERS[name](tmp_path)
    cfg = load_config(
        [
            f"dataset={name}",
            f"dataset.root={tmp_path}",
            "dataset.allow_partial=true",
            "train.crop_size=[48,48]",
        ]
    )
    ds = build_split(cfg.dataset, "train")
    view = AugmentedView(ds, cfg.train.augment, cfg.train.crop_size, cfg.dataset.ignore_index)
    checked = 0
    for seed in range(12):
        image, label = view[seed % len(ds), seed]
        assert image.shape == (3, 48, 48) and label.shape == (48, 48)
        expected = torch.from_numpy(ds.map_label(ungrey(image[0].numpy(), RAWS[name]).astype(np.uint8)))
        if cfg.dataset.reduce_zero_label:
            expected = torch.where(expected == 0, 255, expected - 1)
        pad = label == 255
        interior = _interior(label) & ~pad
        assert (expected[interior] == label[interior]).float().mean() > 0.98
        checked += int(interior.sum())
    assert checked > 1000


def _interior(label: torch.Tensor) -> torch.Tensor:
    """Pixels whose 5×5 neighbourhood has one label (away from bilinear blur at block edges)."""
    lab = label[None, None].float()
    hi = torch.nn.functional.max_pool2d(lab, 5, stride=1, padding=2)
    lo = -torch.nn.functional.max_pool2d(-lab, 5, stride=1, padding=2)
    return (hi == lo)[0, 0]


def test_label_window_equals_resizing_then_cropping():
    # The crop-window gather must give exactly torch's nearest resize followed by pad and crop.
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        h, w = (int(v) for v in torch.randint(3, 90, (2,), generator=g))
        label = torch.randint(0, 30, (h, w), generator=g)
        size = tuple(int(v) for v in torch.randint(2, 200, (2,), generator=g))
        ch, cw = (int(v) for v in torch.randint(1, 120, (2,), generator=g))
        full = TF.resize(label[None], list(size), interpolation=TF.InterpolationMode.NEAREST)[0]
        full = F.pad(full, (0, max(cw - size[1], 0), 0, max(ch - size[0], 0)), value=255)
        top = int(torch.randint(full.shape[0] - ch + 1, (), generator=g))
        left = int(torch.randint(full.shape[1] - cw + 1, (), generator=g))
        window = _nearest_window(label, size, top, left, ch, cw, 255)
        assert torch.equal(window, full[top : top + ch, left : left + cw])
