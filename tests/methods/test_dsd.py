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
