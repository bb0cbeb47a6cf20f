"""Attention transfer against values computed by hand."""

import math

import pytest
import torch

from bench.methods.terms.at import at_loss, attention_map
from bench.models import Taps


def _taps(feat):
    b, _, h, w = feat.shape
    return Taps(stages=[], feat=feat, logits_low=feat.new_zeros(b, 1, h, w), size=(8 * h, 8 * w))


def test_value_by_hand():
    # One image, D=2, two positions. Student channels (1, 0) and (1, 0): mean f² = (1, 0) → a = (1, 0).
    # Teacher channels (1, 1) and (1, 1): mean f² = (1, 1) → a = (1/√2, 1/√2).
    # Mean over the 2 positions: ((1 − 1/√2)² + (1/√2)²) / 2.
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(1, 2, 1, 2)
    t = torch.tensor([[1.0, 1.0], [-1.0, 1.0]]).view(1, 2, 1, 2)  # signs vanish in f²
    r = 1 / math.sqrt(2)
    assert at_loss(s, t).item() == pytest.approx(((1 - r) ** 2 + r**2) / 2, rel=1e-6)


def test_maps_are_unit_norm_and_scale_free():
    f = torch.randn(3, 5, 4, 6)
    torch.testing.assert_close(attention_map(f).norm(dim=1), torch.ones(3))
    assert at_loss(f, 3 * f).item() == pytest.approx(0.0, abs=1e-10)  # documented minimum: any scale
