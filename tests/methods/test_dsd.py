"""DSD (CIRKD re-implementation) against values computed by hand."""

import math

import pytest
import torch

from bench.methods import build_term
from bench.methods.terms.dsd import attention, csd_loss, psd_loss
from bench.models import Taps


def _map(*pixels):
    """``[1, D, 1, N]`` from per-pixel channel vectors."""
    return torch.tensor(pixels).t().reshape(1, len(pixels[0]), 1, len(pixels))


def _taps(feat, logits, aux=None):
    return Taps(stages=[], feat=feat, logits_low=logits, aux_logits=aux, size=tuple(logits.shape[-2:]))


def test_attention_by_hand():
    # mean over channels of f²: pixel 0 (1, 1) → 1, pixel 1 (2, 0) → 2; L2-normalised: (1, 2)/√5.
    a = attention(_map([1.0, 1.0], [2.0, 0.0]))
    assert a.flatten().tolist() == pytest.approx([1 / math.sqrt(5), 2 / math.sqrt(5)])


def test_psd_value_by_hand():
    # Student: a0 = normalize(1, 1) = (1, 1)/√2, a1 = (1, 0); teacher: a0 = (1, 0), a1 = (0, 1).
    s = [_map([1.0], [1.0]), _map([1.0], [0.0])]
    t = [_map([1.0], [0.0]), _map([0.0], [1.0])]
    d = (1 - 1 / math.sqrt(2), -1 / math.sqrt(2))
    r_s = [x / math.hypot(*d) for x in d]
    r_t = [-1 / math.sqrt(2), 1 / math.sqrt(2)]
    expected = ((r_s[0] - r_t[0]) ** 2 + (r_s[1] - r_t[1]) ** 2) / 2
    assert psd_loss(s, t).item() == pytest.approx(expected, rel=1e-6)


def test_csd_value_by_hand():
    # τ = 1, no pooling. Student class 0: σ(ln3, 0) = (3/4, 1/4), class 1 uniform → G = [[10/16, 1/2],
    # [1/2, 1/2]]; teacher uniform → G = 1/2 everywhere. Mean of squared differences: (1/8)²/4.
    s = torch.tensor([[math.log(3), 0.0], [0.0, 0.0]]).reshape(1, 2, 1, 2)
    t = torch.zeros(1, 2, 1, 2)
    assert csd_loss(s, t, temperature=1.0, pool_size=1).item() == pytest.approx(1 / 256, rel=1e-5)


def test_dsd_term_weights_maps_and_zero_minimum():
    feat_s, feat_t = torch.randn(2, 4, 4, 4), torch.randn(2, 6, 4, 4)  # widths may differ
    z_s, z_t, aux_s, aux_t = (torch.randn(2, 3, 4, 4) for _ in range(4))
    term = build_term("dsd")
    loss = term(_taps(feat_s, z_s, aux_s), _taps(feat_t, z_t, aux_t))
    expected = 1000 * psd_loss([aux_s, feat_s, z_s], [aux_t, feat_t, z_t]) + 10 * csd_loss(z_s, z_t)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Without an aux head on both nets: PSD on (feat, logits), one pair.
    loss = term(_taps(feat_s, z_s), _taps(feat_t, z_t, aux_t))
    expected = 1000 * psd_loss([feat_s, z_s], [feat_t, z_t]) + 10 * csd_loss(z_s, z_t)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert term(_taps(feat_t, z_t, aux_t), _taps(feat_t, z_t, aux_t)).item() == pytest.approx(0.0, abs=1e-6)


def test_dsd_gradient_reaches_only_the_student_and_labels_are_unused():
    s = [torch.randn(2, 4, 4, 4, requires_grad=True), torch.randn(2, 3, 4, 4, requires_grad=True)]
    t = [torch.randn(2, 4, 4, 4, requires_grad=True), torch.randn(2, 3, 4, 4, requires_grad=True)]
    term = build_term("dsd")
    loss = term(_taps(*s), _taps(*t), torch.full((2, 4, 4), 255))
    loss.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s)
    assert all(x.grad is None for x in t)
    assert term(_taps(*s), _taps(*t), torch.zeros(2, 4, 4, dtype=torch.long)).item() == loss.item()


def test_dsd_is_independent_of_batch_composition():
    s = [torch.randn(4, 4, 4, 4), torch.randn(4, 3, 4, 4)]
    t = [torch.randn(4, 5, 4, 4), torch.randn(4, 3, 4, 4)]
    term = build_term("dsd")
    whole = term(_taps(*s), _taps(*t)).item()
    halves = [
        term(_taps(*(x[i : i + 2] for x in s)), _taps(*(x[i : i + 2] for x in t))).item() for i in (0, 2)
    ]
    assert whole == pytest.approx(sum(halves) / 2, rel=1e-5)


def test_dsd_is_fp32_under_autocast_and_resizes_the_student():
    bf = torch.bfloat16
    s = _taps(
        torch.randn(2, 4, 2, 2, dtype=bf),
        torch.randn(2, 3, 2, 2, dtype=bf),
        torch.randn(2, 3, 2, 2, dtype=bf),
    )
    t = _taps(
        torch.randn(2, 6, 4, 4, dtype=bf),
        torch.randn(2, 3, 4, 4, dtype=bf),
        torch.randn(2, 3, 2, 2, dtype=bf),
    )
    with torch.autocast("cpu", dtype=bf):
        loss = build_term("dsd")(s, t)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
