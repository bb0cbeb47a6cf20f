"""FitNet against values computed by hand."""

import pytest
import torch

from bench.config.schema import MethodConfig
from bench.errors import ConfigError
from bench.methods import Objective, TermContext, build_term
from bench.models import Taps


def _ctx(d_s, d_t):
    return TermContext(num_classes=3, student_channels={"feat": d_s}, teacher_channels={"feat": d_t})


def _taps(feat):
    b, _, h, w = feat.shape
    return Taps(stages=[], feat=feat, logits_low=feat.new_zeros(b, 1, h, w), size=(8 * h, 8 * w))


def test_value_by_hand_through_the_adapter():
    # D_s=1 → D_t=2 with W = [[2], [1]]; student (1, 3) at two positions → adapted (2, 6) and (1, 3).
    # Teacher channel 0 = (2, 6): no error; channel 1 = (0, 0): errors 1² and 3².
    # Element mean over B·D_t·h·w = 4 entries: (0 + 0 + 1 + 9) / 4 = 2.5.
    term = build_term("fitnet", _ctx(1, 2))
    with torch.no_grad():
        term.adapter.weight.copy_(torch.tensor([2.0, 1.0]).view(2, 1, 1, 1))
    s = torch.tensor([1.0, 3.0]).view(1, 1, 1, 2)
    t = torch.tensor([[2.0, 6.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    assert term(_taps(s), _taps(t)).item() == pytest.approx(2.5, rel=1e-6)


def test_adapter_always_applied_zero_at_identity():
    term = build_term("fitnet", _ctx(3, 3))
    assert [p.shape for p in term.student_parameters()] == [(3, 3, 1, 1)]  # even for D_s = D_t
    f = torch.randn(2, 3, 4, 4)
    assert term(_taps(f), _taps(f.clone())).item() > 0  # random init (CIRKD): not the identity
    with torch.no_grad():
        term.adapter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    assert term(_taps(f), _taps(f.clone())).item() == pytest.approx(0.0, abs=1e-10)


def test_adapter_joins_the_student_optimizer_through_the_objective():
    method = MethodConfig(name="fitnet", terms={"fitnet": build_term("fitnet", _ctx(4, 8)).cfg})
    obj = Objective(method, _ctx(4, 8))
    assert {id(p) for p in obj.student_parameters()} == {id(obj.terms["fitnet"].adapter.weight)}


def test_needs_the_feature_widths():
    with pytest.raises(ConfigError, match="feature widths"):
        build_term("fitnet")
