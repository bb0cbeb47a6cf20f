"""CWD (logit and feature versions) against values computed by hand."""

import math

import pytest
import torch

from bench.errors import ConfigError
from bench.methods import TermContext, build_term
from bench.methods.terms.cwd import cwd_loss
from bench.models import Taps


def _ctx(d_s, d_t):
    return TermContext(num_classes=3, student_channels={"feat": d_s}, teacher_channels={"feat": d_t})


def _taps(logits=None, feat=None):
    x = logits if logits is not None else feat
    b, _, h, w = x.shape
    low = logits if logits is not None else x.new_zeros(b, 1, h, w)
    return Taps(stages=[], feat=feat, logits_low=low, size=(8 * h, 8 * w))


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_value_by_hand_t1_and_t4():
    # One image, one channel, two positions: teacher (ln 3, 0) → φ_t = (¾, ¼); student uniform.
    t = torch.tensor([math.log(3.0), 0.0]).view(1, 1, 1, 2)
    s = torch.zeros(1, 1, 1, 2)
    assert cwd_loss(s, t, 1.0).item() == pytest.approx(_kl((0.75, 0.25), (0.5, 0.5)), rel=1e-6)
    a = 3 ** (1 / 4)  # softmax((ln 3)/4, 0) = (3^¼, 1)/(3^¼ + 1)
    p = (a / (a + 1), 1 / (a + 1))
    assert cwd_loss(s, t, 4.0).item() == pytest.approx(16 * _kl(p, (0.5, 0.5)), rel=1e-5)  # τ² = 16


def test_normaliser_is_batch_times_channels():
    # Two images × two channels; only channel 0 of image 0 differs → the KL of that one distribution
    # divided by B·C = 4 (PyTorch's KLDivLoss() mean would divide by B·C·h·w instead).
    t = torch.zeros(2, 2, 1, 2)
    t[0, 0, 0, 0] = math.log(3.0)
    s = torch.zeros(2, 2, 1, 2)
    kl = _kl((0.75, 0.25), (0.5, 0.5))
    assert cwd_loss(s, t, 1.0).item() == pytest.approx(kl / 4, rel=1e-6)
    assert cwd_loss(s, t, 1.0, channels=1).item() == pytest.approx(kl / 2, rel=1e-6)


def test_log_softmax_survives_peaked_channels():
    # log(softmax) underflows to −inf here (official/CIRKD code); log-softmax stays finite.
    t = torch.tensor([200.0, 0.0]).view(1, 1, 1, 2)
    s = torch.tensor([0.0, 200.0]).view(1, 1, 1, 2)
    loss = cwd_loss(s, t, 1.0)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(200.0, rel=1e-4)


def test_logit_term_has_no_parameters():
    assert build_term("cwd_logits").student_parameters() == []


def test_feature_adapter_only_for_a_width_mismatch():
    assert build_term("cwd_feat", _ctx(8, 8)).student_parameters() == []
    (weight,) = build_term("cwd_feat", _ctx(4, 8)).student_parameters()
    assert weight.shape == (8, 4, 1, 1)
    official = build_term("cwd_feat", _ctx(4, 8), adapter="conv_bn_relu")
    assert len(official.student_parameters()) == 3  # conv weight, BN weight and bias


def test_feature_normalisers():
    # With an identity-like adapter (D_s=2 → D_t=4, W = [I; I]) the student normaliser divides by
    # B·D_s = 2 instead of B·D_t = 4: exactly D_t/D_s = 2 times the canonical value.
    s, t = torch.randn(1, 2, 3, 3), torch.randn(1, 4, 3, 3)
    values = {}
    for normalizer in ("teacher", "student"):
        term = build_term("cwd_feat", _ctx(2, 4), normalizer=normalizer)
        with torch.no_grad():
            term.adapter.weight.copy_(torch.cat([torch.eye(2), torch.eye(2)]).view(4, 2, 1, 1))
        values[normalizer] = term(_taps(feat=s), _taps(feat=t)).item()
    expected = cwd_loss(torch.cat([s, s], 1), t, 4.0)
    assert values["teacher"] == pytest.approx(expected.item(), rel=1e-6)
    assert values["student"] == pytest.approx(2 * values["teacher"], rel=1e-6)


def test_invalid_options_and_missing_widths_are_refused():
    with pytest.raises(ConfigError, match="adapter='mlp'"):
        build_term("cwd_feat", _ctx(4, 8), adapter="mlp")
    with pytest.raises(ConfigError, match="feature widths"):
        build_term("cwd_feat")
