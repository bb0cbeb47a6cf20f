"""The pixel-wise KD term against values computed by hand."""

import math

import pytest
import torch

from bench.methods import build_term
from bench.methods.terms.kd import kd_loss
from bench.models import Taps


def _pair():
    # B=1, C=2, two pixels. Pixel 0: teacher p=(3/4, 1/4), student uniform. Pixel 1: identical.
    teacher = torch.tensor([[math.log(3.0), 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    student = torch.tensor([[0.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    return student, teacher


def test_kd_value_by_hand_t1():
    s, t = _pair()
    kl0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(s, t, 1.0).item() == pytest.approx(kl0 / 2, rel=1e-6)  # mean over 2 pixels, not /C


def test_kd_value_by_hand_t2_has_t_squared_factor():
    s, t = _pair()
    a = math.sqrt(3)  # softmax([ln3/2, 0]) = (√3, 1)/(√3+1)
    p = (a / (a + 1), 1 / (a + 1))
    kl0 = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    assert kd_loss(s, t, 2.0).item() == pytest.approx(4 * kl0 / 2, rel=1e-6)


def test_kd_mask_ignore_averages_over_valid_pixels():
    s, t = _pair()
    kl0 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    term = build_term("kd", mask_ignore=True)
    term.ctx.ignore_index = 255
    labels = torch.tensor([[[0, 255]]])  # pixel 1 ignored → mean over pixel 0 only
    loss = term(Taps.from_logits(s), Taps.from_logits(t), labels)
    assert loss.item() == pytest.approx(kl0, rel=1e-6)
