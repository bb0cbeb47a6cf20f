"""CIRKD v2's GCN block against values computed by hand; what it holds and refuses."""

import math

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.methods import Objective, TermContext, build_term
from bench.methods.terms.cirkd_gcn import GCN
from bench.models import Taps


def _ctx(d_s=2, d_t=2):
    return TermContext(
        num_classes=2, student_channels={"feat": d_s}, teacher_channels={"feat": d_t}, feature_size=(1, 2)
    )


def _taps(feat: torch.Tensor) -> Taps:
    return Taps(stages=[], feat=feat, logits_low=feat[:, :1], size=(8, 16))


def _set(conv: nn.Conv2d, rows: list[list[float]]) -> None:
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(rows).view_as(conv.weight))


def test_gcn_block_by_hand():
    # D = 2 channels (c = 1 inside), two positions; BN in eval with identity statistics and eps 0.
    gcn = GCN(2).eval()
    for bn in (gcn.conv1[1], gcn.out_conv[1]):
        bn.eps = 0.0
    _set(gcn.node_q, [[1.0, 0.0]])
    _set(gcn.node_k, [[0.0, 1.0]])
    _set(gcn.node_v, [[1.0, 1.0]])
    _set(gcn.conv1[0], [[1.0], [-1.0]])
    _set(gcn.out_conv[0], [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]]).view(1, 2, 1, 2)  # channel-major: x[c, position]
    q, k, v = [1.0, 2.0], [3.0, -1.0], [4.0, 1.0]  # per position
    ctx = []
    for i in range(2):
        logits = [q[i] * k[j] / math.sqrt(1) for j in range(2)]
        z = sum(math.exp(s) for s in logits)
        ctx.append(sum(math.exp(s) / z * v[j] for j, s in enumerate(logits)))
    y = [[max(c, 0.0) for c in ctx], [max(-c, 0.0) for c in ctx]]  # conv1 (1, −1), BN identity, ReLU
    xs = [[1.0, 2.0], [3.0, -1.0]]
    expected = [[max(xs[o][i] + y[o][i], 0.0) for i in range(2)] for o in range(2)]
    assert gcn(x)[0, :, 0].flatten().tolist() == pytest.approx([v for row in expected for v in row], rel=1e-6)


def test_held_terms_read_the_block_output():
    term = build_term("cirkd_gcn", _ctx(), terms={"fitnet": {"weight": 2.0}})
    term.gcn = nn.Identity()
    with torch.no_grad():
        term.held["fitnet"].adapter.weight.copy_(3 * torch.eye(2).view(2, 2, 1, 1))
    s = torch.tensor([[[[1.0, 2.0]], [[0.0, -1.0]]]])
    t = torch.zeros_like(s)
    # 2 · mean((3·s − 0)²) over 4 elements
    assert term(_taps(s), _taps(t)).item() == pytest.approx(2 * 9 * (1 + 4 + 0 + 1) / 4)

    class PlusOne(nn.Module):
        def forward(self, x):
            return x + 1

    term.gcn = PlusOne()  # the block's output, not the raw feature, reaches FitNet
    assert term(_taps(s), _taps(t)).item() == pytest.approx(2 * 9 * (4 + 9 + 1 + 0) / 4)


def test_block_and_held_adapters_train_with_the_student():
    ctx = _ctx(2, 4)
    term = build_term("cirkd_gcn", ctx, terms={"fitnet": {}, "cirkd_channel": {"channel_memory_size": 8}})
    own = {id(p) for p in term.student_parameters()}
    assert {id(p) for p in term.gcn.parameters()} <= own
    assert {id(p) for p in term.held["fitnet"].parameters()} <= own
    assert {id(p) for p in term.held["cirkd_channel"].head.parameters()} <= own
    assert term.requires == {"feat"} and term.uses_labels is False


def test_release_preset_composes_the_block_around_the_feature_terms():
    from bench.config.compose import load_config

    cfg = load_config(["method=cirkd_v2_paper", "output_dir=unused"])
    assert set(cfg.method.terms) == {"kd", "cirkd_gcn"}
    held = cfg.method.terms["cirkd_gcn"].terms
    assert list(held) == ["fitnet", "cirkd_minibatch", "cirkd_memory", "cirkd_channel"]
    assert held["cirkd_channel"]["mse_weight"] == 100.0 and held["cirkd_minibatch"]["pool_size"] == 1


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({}, "cirkd_gcn holds no terms: list the feature terms under cirkd_gcn.terms"),
        ({"kd": {}}, "cirkd_gcn: none of its terms reads feat, the only tap the block changes"),
        ({"nope": {}}, "cirkd_gcn.terms.nope: 'nope' is not a term it can hold"),
        ({"inner": {"term": "cirkd_gcn"}}, "cirkd_gcn.terms.inner: 'cirkd_gcn' is not a term it can hold"),
        ({"rdd": {}}, "cirkd_gcn.terms.rdd: 'rdd' replaces the task loss or trains a network after the step"),
        ({"skd_holistic": {}}, "'skd_holistic' replaces the task loss or trains a network after the step"),
        ({"fitnet": {"tau": 1.0}}, "term 'fitnet'"),
    ],
)
def test_what_it_cannot_hold_is_refused_in_one_line(terms, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as e:
        build_term("cirkd_gcn", _ctx(), terms=terms)
    assert "\n" not in str(e.value)


def test_objective_reads_the_held_terms_taps():
    from bench.config.compose import load_config

    cfg = load_config(["method=cirkd_gcn", "output_dir=unused"])
    ctx = TermContext(
        num_classes=3,
        student_channels={"feat": 4},
        teacher_channels={"feat": 6},
        feature_size=(8, 8),
        batch_size=2,
    )
    objective = Objective(cfg.method, ctx)
    assert objective.teacher_taps == {"feat"}
    assert len(objective.student_parameters()) > len(list(objective.terms["cirkd_gcn"].gcn.parameters()))
