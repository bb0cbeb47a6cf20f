"""The CIRKD mini-batch pixel-pair term against values computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from bench.config.schema import MethodConfig
from bench.errors import ConfigError
from bench.methods import Objective, TermContext, build_term, relational
from bench.methods.terms.cirkd_minibatch import CIRKDMiniBatchConfig, minibatch_pair_loss, pool_features
from bench.models import Taps


def _feat_taps(feat):
    return Taps(stages=[], feat=feat, logits_low=torch.zeros(feat.shape[0], 1, *feat.shape[-2:]))


def _pair_loop(s, t, tau):
    """Reference: the official double loop over image pairs, KL batchmean per pair, / B²."""
    s, t = F.normalize(s, dim=1).flatten(2), F.normalize(t, dim=1).flatten(2)
    b = s.shape[0]
    total = 0.0
    for i in range(b):
        for j in range(b):
            log_s = F.log_softmax(s[i].T @ s[j] / tau, dim=1)
            p_t = F.softmax(t[i].T @ t[j] / tau, dim=1)
            total += F.kl_div(log_s, p_t, reduction="batchmean")
    return total / b**2


def test_minibatch_value_by_hand():
    # One image, two positions. Teacher: orthogonal unit features → A^t = I; student: both (1, 0) →
    # A^s = all ones → uniform rows. With τ = 1/2 each teacher row is σ(2, 0) = (p, 1 − p),
    # p = e²/(e² + 1), and KL(row ‖ uniform) = p·ln 2p + (1 − p)·ln 2(1 − p), the same for both rows.
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 2)
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).T.reshape(1, 2, 1, 2)
    p = math.exp(2) / (math.exp(2) + 1)
    kl = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert minibatch_pair_loss(s, t, temperature=0.5).item() == pytest.approx(kl, rel=1e-6)


def test_minibatch_matches_the_official_pair_loop():
    s, t = torch.randn(4, 6, 3, 5), torch.randn(4, 8, 3, 5)  # widths may differ: affinities are D-free
    whole = minibatch_pair_loss(s, t, 0.1, group_size=0)
    assert whole.item() == pytest.approx(_pair_loop(s, t, 0.1).item(), rel=1e-5)
    # Groups of 2 = the official per-GPU batch: the mean of the loops over each group's pairs.
    grouped = minibatch_pair_loss(s, t, 0.1, group_size=2)
    expected = (_pair_loop(s[:2], t[:2], 0.1) + _pair_loop(s[2:], t[2:], 0.1)) / 2
    assert grouped.item() == pytest.approx(expected.item(), rel=1e-5)


def test_minibatch_pooling_is_ceil_mode_average():
    f = torch.arange(9.0).reshape(1, 1, 3, 3)
    pooled = pool_features(f, 2)  # windows clipped at the border (ceil mode, no padding counted)
    assert pooled.flatten().tolist() == pytest.approx([(0 + 1 + 3 + 4) / 4, (2 + 5) / 2, (6 + 7) / 2, 8.0])
    assert pool_features(f, 1) is f


def test_minibatch_term_resizes_and_pools():
    s, t = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 6, 6)
    term = build_term("cirkd_minibatch", pool_size=2, group_size=0)
    loss = term(_feat_taps(s), _feat_taps(t), torch.full((2, 12, 12), 255))
    s_up = F.interpolate(s, (6, 6), mode="bilinear")
    expected = minibatch_pair_loss(pool_features(s_up, 2), pool_features(t, 2))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_minibatch_memory_estimate_stops_an_oversized_run():
    # The affinities are built a block of rows at a time: memory is the node vectors (4 student copies
    # and 1 teacher copy of [B, D, M] fp32) plus 3 blocks of ≥ 32 rows. Cityscapes crop 512×1024 at
    # OS8 (64×128 features), batch 16, unpooled: 16·8192·(4·256 + 512)·4 B = 768 MB + 3·32·16384·4 B
    # = 6 MB — where the plain formulation needed 6 matrices × 16·2 pairs × 8192² entries = 48 GiB.
    widths = {"feat": 256}
    ctx = TermContext(
        num_classes=19,
        batch_size=16,
        feature_size=(64, 128),
        student_channels=widths,
        teacher_channels={"feat": 512},
    )
    term = build_term("cirkd_minibatch", ctx, pool_size=1, group_size=2)
    assert term.estimate_memory_mb() == pytest.approx(16 * 8192 * (4 * 256 + 512) * 4 / 2**20 + 6)
    # A 1024×2048 map (an 8192×16384 input at OS8) unpooled does not fit: the run is refused.
    ctx.feature_size = (1024, 2048)
    cfg = CIRKDMiniBatchConfig(term="cirkd_minibatch", pool_size=1, group_size=2)
    with pytest.raises(ConfigError, match="term 'mb' needs about 198144 MB"):
        Objective(MethodConfig(name="cirkd", terms={"mb": cfg}), ctx)


def test_minibatch_gradient_matches_autograd_of_the_pair_loop(monkeypatch):
    # Small blocks force several row blocks per image (the fused gradient is accumulated per block).
    monkeypatch.setattr(relational, "CHUNK_ELEMENTS", 16)
    monkeypatch.setattr(relational, "MIN_ROWS", 3)
    s, t = torch.randn(4, 6, 3, 5), torch.randn(4, 8, 3, 5)
    for group in (0, 2):
        a, b = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
        minibatch_pair_loss(a, t, 0.1, group).mul(3.0).backward()
        if group:
            ref = (_pair_loop(b[:2], t[:2], 0.1) + _pair_loop(b[2:], t[2:], 0.1)) / 2
        else:
            ref = _pair_loop(b, t, 0.1)
        ref.mul(3.0).backward()
        torch.testing.assert_close(a.grad, b.grad)  # fp32 tolerances


def test_minibatch_group_size_must_divide_the_batch():
    with pytest.raises(ConfigError, match=r"group_size=3 must divide train\.batch_size=8"):
        build_term("cirkd_minibatch", TermContext(num_classes=3, batch_size=8), group_size=3)


def test_minibatch_gradient_through_the_normalisation_matches_autograd_below_eps(monkeypatch):
    # The fused gradient includes F.normalize's, also where a node's norm is below ε (the clamp).
    monkeypatch.setattr(relational, "CHUNK_ELEMENTS", 16)
    monkeypatch.setattr(relational, "MIN_ROWS", 3)
    s, t = torch.randn(2, 6, 3, 5), torch.randn(2, 8, 3, 5)
    s[1, :, 2, 4] = 1e-14 * torch.randn(6)  # below ε but not zero: only the clamp branch is exact
    a, b = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    minibatch_pair_loss(a, t, 0.1, 2).backward()
    _pair_loop(b, t, 0.1).backward()
    # rtol 1e-5: the 1/ε branch scales float32 rounding of a different summation order by 1e12.
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    assert a.grad[1, :, 2, 4].abs().max() > 1e6  # the clamp's 1/ε scale, as autograd has it


@pytest.mark.parametrize("pool_size", [1, 2])
def test_minibatch_leaves_its_inputs_unchanged(pool_size):
    # Pooled copies (student's and teacher's) are normalised in place; the inputs themselves never are.
    s, t = torch.randn(2, 6, 4, 4, requires_grad=True), torch.randn(2, 8, 4, 4)
    before = (s.detach().clone(), t.clone())
    minibatch_pair_loss(s, t, 0.1, 2, pool_size).backward()
    assert torch.equal(s.detach(), before[0]) and torch.equal(t, before[1])


def test_pooled_minibatch_gradient_matches_autograd(monkeypatch):
    # Pooled, the student's nodes are normalised in place: the gradient must still be autograd's.
    monkeypatch.setattr(relational, "CHUNK_ELEMENTS", 16)
    monkeypatch.setattr(relational, "MIN_ROWS", 3)
    s, t = torch.randn(2, 6, 5, 6), torch.randn(2, 8, 5, 6)
    a, b = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    minibatch_pair_loss(a, t, 0.1, 2, pool_size=2).backward()
    _pair_loop(pool_features(b, 2), pool_features(t, 2), 0.1).backward()
    torch.testing.assert_close(a.grad, b.grad)
