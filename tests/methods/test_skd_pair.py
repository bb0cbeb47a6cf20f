"""SKD pair-wise distillation against values computed by hand."""

import math

import pytest
import torch

from bench.config.schema import MethodConfig
from bench.errors import ConfigError
from bench.methods import Objective, TermContext, build_term
from bench.methods.terms.skd_pair import node_count, pool_window, skd_pair_loss
from bench.models import Taps


def _taps(feat):
    b, _, h, w = feat.shape
    return Taps(stages=[], feat=feat, logits_low=feat.new_zeros(b, 1, h, w), size=(8 * h, 8 * w))


def test_value_by_hand_without_pooling():
    # One image, D=2, two nodes (a 1×2 map, kernel 1). Student nodes (1,0), (0,1): A_s = I.
    # Teacher nodes (1,0), (1,1)/√2: A_t = [[1, 1/√2], [1/√2, 1]].
    # Mean over the M² = 4 entries: (0 + 2·(1/√2)² + 0) / 4 = 0.25.
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    t = torch.tensor([[1.0, 3.0], [0.0, 3.0]]).view(1, 2, 1, 2)  # norms do not matter
    assert skd_pair_loss(s, t, (1, 1)).item() == pytest.approx(0.25, rel=1e-6)


def test_max_pooling_builds_the_nodes():
    # 2×4 map, 2×2 max-pool → two nodes: student (1,0),(0,1) after the max; teacher (1,0),(1,0).
    # A_s = I, A_t = all ones → (0 + 1 + 1 + 0)/4 = 0.5.
    s = torch.zeros(1, 2, 2, 4)
    s[0, 0, 1, 1] = 1.0  # node 0 (columns 0–1): (1, 0)
    s[0, 1, 0, 2] = 2.0  # node 1 (columns 2–3): (0, 2)
    t = torch.zeros(1, 2, 2, 4)
    t[0, 0, 0, 0] = t[0, 0, 1, 3] = 5.0
    assert skd_pair_loss(s, t, (2, 2)).item() == pytest.approx(0.5, rel=1e-6)


def test_node_grids():
    assert pool_window((64, 128), 2, 0.0) == (2, 2) and node_count((64, 128), (2, 2)) == 2048  # CIRKD
    assert pool_window((64, 128), 4, 0.0) == (4, 4) and node_count((64, 128), (4, 4)) == 16 * 32
    assert pool_window((64, 128), 2, 0.5) == (32, 64) and node_count((64, 128), (32, 64)) == 4  # official
    assert node_count((65, 65), pool_window((65, 65), 2, 0.5)) == 9  # odd sizes: ceil mode adds nodes
    assert node_count((5, 7), (2, 2)) == 3 * 4


def test_matches_the_gram_identity():
    # Σ_mn (A^s − A^t)² = ‖F_s F_sᵀ‖² − 2‖F_s F_tᵀ‖² + ‖F_t F_tᵀ‖² (F: D×M unit columns), computed
    # without any M×M matrix — an independent check of the batched implementation.
    torch.manual_seed(0)
    s, t = torch.randn(3, 5, 6, 8), torch.randn(3, 7, 6, 8)
    fs = torch.nn.functional.normalize(torch.nn.functional.max_pool2d(s, 2, 2).flatten(2), dim=1)
    ft = torch.nn.functional.normalize(torch.nn.functional.max_pool2d(t, 2, 2).flatten(2), dim=1)

    def sq(a, b):
        return (a @ b.transpose(1, 2)).pow(2).sum()

    m = fs.shape[-1]
    expected = (sq(fs, fs) - 2 * sq(fs, ft) + sq(ft, ft)) / (3 * m * m)
    assert skd_pair_loss(s, t, (2, 2)).item() == pytest.approx(expected.item(), rel=1e-4)


def test_detached_norm_changes_the_gradient_not_the_value():
    s, t = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    grads = []
    for detach in (False, True):
        x = s.clone().requires_grad_(True)
        loss = skd_pair_loss(x, t, (2, 2), detach_norm=detach)
        loss.backward()
        grads.append((loss.item(), x.grad))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    assert not torch.allclose(grads[0][1], grads[1][1])


def test_memory_estimate_and_start_check():
    ctx = TermContext(num_classes=19, batch_size=8, feature_size=(64, 128))
    pooled = build_term("skd_pair", ctx).estimate_memory_mb()
    assert pooled == pytest.approx(3 * 8 * 2048**2 * 4 / 2**20)  # 3 copies of 8 × 2,048² fp32 ≈ 384 MB
    full = build_term("skd_pair", ctx, pool_kernel=1).estimate_memory_mb()
    assert math.isclose(full, 16 * pooled)  # every position a node: 4× the nodes, 16× the memory
    method = MethodConfig(name="m", terms={"skd_pair": build_term("skd_pair", pool_kernel=1).cfg})
    method.memory_limit_mb = 4096
    with pytest.raises(ConfigError, match=r"term 'skd_pair' needs about 6144 MB"):
        Objective(method, ctx)


def test_invalid_pooling_is_refused():
    with pytest.raises(ConfigError, match="pool_kernel"):
        build_term("skd_pair", pool_kernel=0)
