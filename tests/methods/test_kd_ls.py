"""Logit-standardised KD against values computed by hand."""

import math

import pytest
import torch

from bench.methods import build_term
from bench.methods.terms.kd_ls import standardize
from bench.models import Taps


def _pair():
    # B=1, C=3, two pixels (h=1, w=2). Pixel 0: teacher (0, 1, 2), student (0, 0, 3).
    # Pixel 1: student = 5·teacher + 7, a positive affine map — standardisation makes them equal.
    teacher = torch.tensor([[0.0, 1.0, 2.0], [1.0, -1.0, 3.0]]).T.reshape(1, 3, 1, 2)
    student = torch.tensor([[0.0, 0.0, 3.0], [12.0, 2.0, 22.0]]).T.reshape(1, 3, 1, 2)
    return student, teacher


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_standardize_by_hand_unbiased_and_biased():
    z = torch.tensor([0.0, 0.0, 3.0]).view(1, 3, 1, 1)
    # mean 1, unbiased std = sqrt((1 + 1 + 4) / 2) = sqrt(3); biased sqrt(2)
    expect = [-1 / math.sqrt(3), -1 / math.sqrt(3), 2 / math.sqrt(3)]
    assert standardize(z, eps=0.0).flatten().tolist() == pytest.approx(expect, rel=1e-6)
    expect_b = [-1 / math.sqrt(2), -1 / math.sqrt(2), 2 / math.sqrt(2)]
    assert standardize(z, unbiased=False, eps=0.0).flatten().tolist() == pytest.approx(expect_b, rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_kd_ls_value_by_hand(tau):
    s, t = _pair()
    # Pixel 0: teacher (0,1,2) → (-1, 0, 1) (mean 1, unbiased std 1); student (0,0,3) → (-1,-1,2)/√3.
    zt = [-1.0 / tau, 0.0, 1.0 / tau]
    zs = [v / math.sqrt(3) / tau for v in (-1.0, -1.0, 2.0)]
    kl0 = _kl(_softmax(zt), _softmax(zs))
    term = build_term("kd_ls", temperature=tau, eps=0.0)
    loss = term(Taps.from_logits(s), Taps.from_logits(t))
    assert loss.item() == pytest.approx(tau**2 * kl0 / 2, rel=1e-5)  # pixel 1 contributes 0; mean over 2


def test_kd_ls_ignores_scale_and_shift_of_the_student():
    """The point of the method: logits a positive affine map of the teacher's give loss 0."""
    t = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(0))
    term = build_term("kd_ls")
    assert term(Taps.from_logits(3 * t - 2), Taps.from_logits(t)).item() == pytest.approx(0.0, abs=1e-6)
    plain = build_term("kd", temperature=2.0)  # the plain KD does not
    assert plain(Taps.from_logits(3 * t - 2), Taps.from_logits(t)).item() > 0.1


def test_kd_ls_standardises_over_classes_not_width():
    """The release's normalize works on the last axis; on [B, C, h, w] that is the width — not what we do."""
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(1, 4, 2, 6, generator=g), torch.randn(1, 4, 2, 6, generator=g)
    loss = build_term("kd_ls", eps=0.0)(Taps.from_logits(s), Taps.from_logits(t))

    # Reference: each pixel as a classification sample, [N, C] rows as the release computes them.
    def rows(x):
        x = x.permute(0, 2, 3, 1).reshape(-1, 4)
        return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)

    ls, lt = torch.log_softmax(rows(s) / 2, -1), torch.softmax(rows(t) / 2, -1)
    ref = (lt * (lt.log() - ls)).sum(-1).mean() * 4
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_kd_ls_mask_ignore_averages_over_valid_pixels():
    s, t = _pair()
    term = build_term("kd_ls", mask_ignore=True, eps=0.0)
    term.ctx.ignore_index = 255
    zt = [-0.5, 0.0, 0.5]
    zs = [v / math.sqrt(3) / 2 for v in (-1.0, -1.0, 2.0)]
    kl0 = _kl(_softmax(zt), _softmax(zs))
    loss = term(Taps.from_logits(s), Taps.from_logits(t), torch.tensor([[[0, 255]]]))
    assert loss.item() == pytest.approx(4 * kl0, rel=1e-5)
    # Ignore the differing pixel instead: only the affine-equal pixel remains → 0.
    loss = term(Taps.from_logits(s), Taps.from_logits(t), torch.tensor([[[255, 1]]]))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
