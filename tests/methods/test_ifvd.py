"""IFVD against values computed by hand and a per-class loop written from the definition."""

import math

import pytest
import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.methods import TermContext, build_term
from bench.methods.terms.ifvd import ifvd_loss, prototype_cosine
from bench.models import Taps

CTX = TermContext(num_classes=3, ignore_index=255)


def _taps(feat):
    b, _, h, w = feat.shape
    return Taps(stages=[], feat=feat, logits_low=feat.new_zeros(b, 1, h, w), size=(h, w))


def _hand_pair():
    # One image, D=2, three pixels in a row: two of class 0, one ignore.
    # Student class-0 features (1,0), (0,1) → prototype (½,½) → cos = 1/√2 for both pixels.
    # Teacher class-0 features (1,0), (2,0) → prototype (1.5,0) → cos = 1 for both.
    s = torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]]).view(1, 2, 1, 3)
    t = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.0, 3.0]]).view(1, 2, 1, 3)
    labels = torch.tensor([[[0, 0, 255]]])
    return s, t, labels


def test_value_by_hand_counts_ignore_pixels_in_the_denominator():
    s, t, labels = _hand_pair()
    per_pixel = (1 / math.sqrt(2) - 1) ** 2  # the ignore pixel: cos 1 vs 1 → 0
    assert ifvd_loss(s, t, labels, 3).item() == pytest.approx(2 * per_pixel / 3, rel=1e-6)  # official
    assert ifvd_loss(s, t, labels, 3, mask_ignore=True).item() == pytest.approx(per_pixel, rel=1e-6)


def test_term_option_mask_ignore():
    s, t, labels = _hand_pair()
    official = build_term("ifvd", CTX)(_taps(s), _taps(t), labels)
    masked = build_term("ifvd", CTX, mask_ignore=True)(_taps(s), _taps(t), labels)
    assert masked.item() == pytest.approx(1.5 * official.item(), rel=1e-6)


def _loop_reference(feat, labels, num_classes):
    """The definition, class by class and image by image (slow; for the test only)."""
    b, d, h, w = feat.shape
    out = torch.ones(b, h * w)
    for i in range(b):
        f, y = feat[i].reshape(d, -1), labels[i].reshape(-1)
        for k in range(num_classes):
            sel = y == k
            if sel.any():
                proto = f[:, sel].sum(1) / (sel.sum() + 1e-6)
                out[i, sel] = F.cosine_similarity(f[:, sel], proto[:, None], dim=0)
    return out


def test_vectorised_prototypes_match_a_class_loop():
    torch.manual_seed(0)
    feat = torch.randn(3, 8, 6, 7)
    labels = torch.randint(0, 5, (3, 6, 7))
    labels[0, :2] = 255
    labels[1] = 2  # one class only
    labels[2, 0, 0] = -1  # CIRKD's ignore value is also outside [0, C)
    feat.requires_grad_(True)
    fast, slow = prototype_cosine(feat, labels, 5), _loop_reference(feat, labels, 5)
    torch.testing.assert_close(fast, slow)
    weights = torch.randn_like(fast)
    (grad_fast,) = torch.autograd.grad((fast * weights).sum(), feat)
    (grad_slow,) = torch.autograd.grad((slow * weights).sum(), feat)
    torch.testing.assert_close(grad_fast, grad_slow)  # gradients flow through the prototypes alike


def test_needs_the_number_of_classes():
    with pytest.raises(ConfigError, match="num_classes"):
        build_term("ifvd")
