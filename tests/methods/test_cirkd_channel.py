"""CIRKD v2 channel terms against values computed by hand; queue and grouping behaviour."""

import math

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.methods import TermContext, build_term
from bench.models import Taps


def _softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _taps(feat: torch.Tensor) -> Taps:
    return Taps(stages=[], feat=feat, logits_low=feat[:, :1], aux_logits=None, size=(8, 16))


def _term(**params):
    ctx = TermContext(
        num_classes=2, student_channels={"feat": 2}, teacher_channels={"feat": 2}, feature_size=(1, 2)
    )
    term = build_term("cirkd_channel", ctx, pool_size=1, contrast_temperature=1.0, **params)
    term.head = nn.Identity()  # by hand: the unit channel vectors are the features themselves
    return term


# B=1, D=2 channels, 1×2 maps: student channels (1,0), (0,1); teacher channels (1,0), (0.6,0.8).
STUDENT = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
TEACHER = torch.tensor([[[[1.0, 0.0]], [[0.6, 0.8]]]])


def test_minibatch_channel_relation_by_hand():
    term = _term(memory_weight=0.0, mse_weight=0.0)
    # S^s = I, S^t = [[1, .6], [.6, 1]]; the two rows' KLs are equal by symmetry.
    kl0 = _kl(_softmax([1.0, 0.6]), _softmax([1.0, 0.0]))
    assert term(_taps(STUDENT), _taps(TEACHER)).item() == pytest.approx(kl0, rel=1e-5)


def test_channel_mse_by_hand():
    term = _term(minibatch_weight=0.0, memory_weight=0.0, mse_weight=1.0)
    # channel 1: (0 − .6)² + (1 − .8)² = .4; mean over B·D·M = 4 elements
    assert term(_taps(STUDENT), _taps(TEACHER)).item() == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("kd_temperature", [1.0, 2.0])
def test_memory_channel_relation_by_hand(kd_temperature):
    term = _term(
        minibatch_weight=0.0,
        mse_weight=0.0,
        memory_weight=1.0,
        kd_temperature=kd_temperature,
        channel_memory_size=2,
        channel_contrast_size=2,
    )
    term.queue.copy_(torch.eye(2))
    term.eval()  # no enqueue: the bank is the two unit vectors
    tc = kd_temperature
    # row 0: student and teacher both (1, 0) → 0; row 1: teacher (.6,.8), student (0,1)
    kl1 = _kl(_softmax([0.6 / tc, 0.8 / tc]), _softmax([0.0, 1.0 / tc]))
    assert term(_taps(STUDENT), _taps(TEACHER)).item() == pytest.approx(tc**2 * kl1 / 2, rel=1e-5)


def test_queue_push_follows_the_release():
    """min(n, update_size) rows at the pointer; a push reaching the end overwrites the last slots."""
    term = _term(channel_memory_size=5, update_size=2)
    term.queue.zero_()
    keys = torch.arange(1, 7, dtype=torch.float).view(3, 2)  # three distinct rows
    term.enqueue(keys)
    assert int(term.queue_ptr) == 2 and (term.queue[2:] == 0).all() and (term.queue[:2] != 0).all()
    term.enqueue(keys)
    assert int(term.queue_ptr) == 4 and (term.queue[4] == 0).all()
    before = term.queue[:3].clone()
    term.enqueue(keys)  # 4 + 2 ≥ 5: rows 3, 4 rewritten, pointer back to 0
    assert int(term.queue_ptr) == 0 and torch.equal(term.queue[:3], before) and (term.queue[4] != 0).all()
    rows = {tuple(r) for r in keys.tolist()}
    assert all(tuple(r) in rows for r in term.queue.tolist())


def test_training_mode_enqueues_and_eval_does_not():
    term = _term()
    queue = term.queue.clone()
    term.eval()
    term(_taps(STUDENT), _taps(TEACHER))
    assert torch.equal(term.queue, queue)
    term.train()
    term(_taps(STUDENT), _taps(TEACHER))
    assert int(term.queue_ptr) == 2 and torch.allclose(
        term.queue[:2].sort(0).values, TEACHER[0, :, 0].sort(0).values
    )


def test_group_size_one_is_the_mean_of_single_images():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 2, 1, 2, generator=g), torch.randn(2, 2, 1, 2, generator=g)
    one = _term(memory_weight=0.0, mse_weight=0.0, group_size=1)
    whole = _term(memory_weight=0.0, mse_weight=0.0, group_size=0)
    singles = [one(_taps(s[i : i + 1]), _taps(t[i : i + 1])).item() for i in range(2)]
    assert one(_taps(s), _taps(t)).item() == pytest.approx(sum(singles) / 2, rel=1e-5)
    assert whole(_taps(s), _taps(t)).item() != pytest.approx(sum(singles) / 2, rel=1e-3)


def test_a_map_of_another_size_than_the_queue_is_refused():
    term = _term()
    with pytest.raises(ConfigError, match=r"cirkd_channel: pooled teacher map has 4 positions, its queue 2"):
        term(_taps(torch.randn(1, 2, 2, 2)), _taps(torch.randn(1, 2, 2, 2)))


def test_no_feature_size_is_a_config_error():
    ctx = TermContext(num_classes=2, student_channels={"feat": 2}, teacher_channels={"feat": 2})
    with pytest.raises(ConfigError, match="feature_size"):
        build_term("cirkd_channel", ctx)
