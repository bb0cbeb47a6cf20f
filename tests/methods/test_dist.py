"""The DIST term against values computed by hand."""

import pytest
import torch

from bench.methods import build_term
from bench.methods.terms.dist import dist_loss
from bench.models import Taps


def _logits(*pixels):
    """``[1, C, 1, N]`` logits whose softmax is the given per-pixel probabilities."""
    return torch.tensor(pixels).log().t().reshape(1, len(pixels[0]), 1, len(pixels))


def _pair():
    # Pixel 0 identical; pixel 1: the student puts 1/2 on class 1, the teacher on class 2.
    s = _logits([0.5, 0.25, 0.25], [0.25, 0.5, 0.25])
    t = _logits([0.5, 0.25, 0.25], [0.25, 0.25, 0.5])
    return s, t


def test_dist_value_by_hand():
    s, t = _pair()
    # Inter: pixel 0 ρ = 1. Pixel 1, centred at 1/3: s = (−1, 2, −1)/12, t = (−1, −1, 2)/12 →
    # ρ = (1 − 2 − 2)/6 = −1/2. L_inter = 1 − (1 − 1/2)/2 = 3/4.
    # Intra (columns over the two pixels): class 0 s = t = (1/2, 1/4) → ρ = 1; class 1 t = (1/4, 1/4)
    # constant → ρ = 0; class 2 s constant → ρ = 0. L_intra = 1 − 1/3 = 2/3.
    assert dist_loss(s, t, beta=1.0, gamma=0.0).item() == pytest.approx(0.75, rel=1e-5)
    assert dist_loss(s, t, beta=0.0, gamma=1.0).item() == pytest.approx(2 / 3, rel=1e-5)
    assert dist_loss(s, t, beta=2.0, gamma=0.5).item() == pytest.approx(1.5 + 1 / 3, rel=1e-5)


def test_dist_temperature_scales_by_t_squared():
    s, t = _pair()
    # At T = 2 the probabilities are σ(log p / 2) ∝ √p; check against the formula on those.
    ps = torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]).sqrt()
    pt = torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]]).sqrt()
    ps, pt = ps / ps.sum(1, keepdim=True), pt / pt.sum(1, keepdim=True)
    rho = torch.nn.functional.cosine_similarity(ps - ps.mean(1, True), pt - pt.mean(1, True), dim=1)
    expected = 4 * (1 - rho.mean().item())
    assert dist_loss(s, t, beta=1.0, gamma=0.0, temperature=2.0).item() == pytest.approx(expected, rel=1e-5)


def test_dist_adds_the_aux_heads_with_factor_0_4():
    s, t = _pair()
    sa, ta = torch.randn(1, 3, 1, 2), torch.randn(1, 3, 1, 2)
    term = build_term("dist")
    with_aux = term(Taps.from_logits(s, aux_logits=sa), Taps.from_logits(t, aux_logits=ta))
    expected = dist_loss(s, t) + 0.4 * dist_loss(sa, ta)
    assert with_aux.item() == pytest.approx(expected.item(), rel=1e-6)
    # Without an aux head on either side the aux part is left out.
    only_main = term(Taps.from_logits(s, aux_logits=sa), Taps.from_logits(t))
    assert only_main.item() == pytest.approx(dist_loss(s, t).item(), rel=1e-6)


def test_dist_mask_ignore_is_the_loss_on_the_valid_pixels():
    s, t = torch.randn(1, 4, 1, 3), torch.randn(1, 4, 1, 3)
    labels = torch.tensor([[[0, 255, 2]]])
    term = build_term("dist", mask_ignore=True)
    term.ctx.ignore_index = 255
    masked = term(Taps.from_logits(s), Taps.from_logits(t), labels)
    keep = [0, 2]
    assert masked.item() == pytest.approx(dist_loss(s[..., keep], t[..., keep]).item(), rel=1e-5)
    # Off (official): every pixel counts.
    unmasked = build_term("dist", aux_weight=0.0)(Taps.from_logits(s), Taps.from_logits(t), labels)
    assert unmasked.item() == pytest.approx(dist_loss(s, t).item(), rel=1e-6)


def test_dist_batch_composition():
    # Inter-class: a mean over pixels → independent of how the batch is split. Intra-class: each
    # class is correlated over all pixels of the batch → depends on which images share it.
    s, t = torch.randn(4, 5, 3, 3), torch.randn(4, 5, 3, 3)
    whole = dist_loss(s, t, 1.0, 0.0).item()
    halves = (dist_loss(s[:2], t[:2], 1.0, 0.0) + dist_loss(s[2:], t[2:], 1.0, 0.0)).item() / 2
    assert whole == pytest.approx(halves, rel=1e-6)
    # The hand example as two one-pixel images: together L_intra = 2/3 (above); alone, every class
    # column has a single entry, so ρ = 0 and L_intra = 1 for each image.
    s, t = (x.permute(3, 1, 2, 0) for x in _pair())  # [2, 3, 1, 1]
    assert dist_loss(s, t, 0.0, 1.0).item() == pytest.approx(2 / 3, rel=1e-5)
    assert dist_loss(s[:1], t[:1], 0.0, 1.0).item() == pytest.approx(1.0)
    assert dist_loss(s[1:], t[1:], 0.0, 1.0).item() == pytest.approx(1.0)
