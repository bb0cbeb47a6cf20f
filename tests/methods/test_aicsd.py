"""AICSD: the ICSD term (paper and as-released variants) and the ALW schedule of conf/method/aicsd.yaml."""

import math

import pytest
import torch

from bench.config.compose import load_config
from bench.methods import Objective, TermContext, build_term, cross_entropy
from bench.methods.objective import schedule_multiplier
from bench.methods.terms.aicsd import icsd_loss, icsd_matrices, icsd_matrix_as_released
from bench.methods.terms.kd import kd_loss
from bench.models import Taps

LN3, LN2 = math.log(3), math.log(2)


def _logits(*dists):
    """``[1, C, 2, 1]`` logits whose softmax over the two positions is the given distribution per class."""
    return torch.tensor(dists).log().reshape(1, len(dists), 2, 1)


def _normalised(rows):
    return [[v / math.sqrt(sum(x * x for x in row)) if any(row) else 0.0 for v in row] for row in rows]


def _mse(a, b):
    return sum((x - y) ** 2 for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)) / 9


# Teacher: q0 = (3/4, 1/4), q1 = (1/2, 1/2), q2 = (1/4, 3/4); student swaps classes 1 and 2.
TEACHER = _logits([0.75, 0.25], [0.5, 0.5], [0.25, 0.75])
STUDENT = _logits([0.75, 0.25], [0.25, 0.75], [0.5, 0.5])
A = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # KL((3/4, 1/4) ‖ (1/2, 1/2)) = KL(q2 ‖ q1)
B_ = 0.5 * LN3  # KL(q0 ‖ q2) = KL(q2 ‖ q0) = ¾ln3 − ¼ln3
C_ = 0.5 * math.log(4 / 3)  # KL(q1 ‖ q0) = KL(q1 ‖ q2) = ½ln(2/3) + ½ln2


def test_icsd_value_by_hand():
    m_t = [[0, A, B_], [C_, 0, C_], [B_, A, 0]]
    m_s = [[0, B_, A], [B_, 0, A], [C_, C_, 0]]  # rows/columns of classes 1 and 2 swapped
    torch.testing.assert_close(icsd_matrices(TEACHER)[0], torch.tensor(m_t, dtype=torch.float32))
    expected = _mse(_normalised(m_s), _normalised(m_t))  # mean over the 9 entries of one image
    assert icsd_loss(STUDENT, TEACHER).item() == pytest.approx(expected, rel=1e-5)
    # A student with one distribution for every class: M^s = 0, normalised rows 0, loss = Σ M̂t²/9 = 3/9.
    flat = _logits([0.5, 0.5], [0.5, 0.5], [0.5, 0.5])
    assert icsd_loss(flat, TEACHER).item() == pytest.approx(1 / 3, rel=1e-5)


def test_icsd_as_released_value_by_hand():
    # Released entry (i, j), i ≤ j: (1/B)·Σ q_j(log q_j − q_i), mirrored. Here B = 1, W = 1 (so the
    # height-only softmax is the spatial one). Σ q log q: s0 = s2 = ¾ln¾ + ¼ln¼, s1 = −ln2;
    # q·q: q0q0 = q2q2 = 10/16, q0q1 = q1q1 = q1q2 = 1/2, q0q2 = 6/16.
    s0 = 0.75 * math.log(0.75) + 0.25 * math.log(0.25)
    e = {(0, 0): s0 - 10 / 16, (0, 1): -LN2 - 0.5, (0, 2): s0 - 6 / 16}
    e |= {(1, 1): -LN2 - 0.5, (1, 2): s0 - 0.5, (2, 2): s0 - 10 / 16}
    m_t = [[e[min(i, j), max(i, j)] for j in range(3)] for i in range(3)]
    torch.testing.assert_close(icsd_matrix_as_released(TEACHER), torch.tensor(m_t, dtype=torch.float32))
    # Flat student: every entry −ln2 − ½ → normalised rows (−1/√3, −1/√3, −1/√3).
    flat = _logits([0.5, 0.5], [0.5, 0.5], [0.5, 0.5])
    expected = _mse(_normalised([[-LN2 - 0.5] * 3] * 3), _normalised(m_t))
    assert icsd_loss(flat, TEACHER, as_released=True).item() == pytest.approx(expected, rel=1e-5)


def _released_loop(z):
    """Reference: the released double loop (softmax over dim 2, KLDivLoss(batchmean)(q_i, q_j))."""
    q = torch.softmax(z, dim=2)
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    c = z.shape[1]
    m = torch.empty(c, c)
    for i in range(c):
        for j in range(i, c):
            m[j, i] = m[i, j] = kl(q[:, i], q[:, j])
    return m


def test_as_released_matches_the_released_loop_softmax_over_height_only():
    z = torch.randn(2, 5, 4, 3)
    torch.testing.assert_close(icsd_matrix_as_released(z), _released_loop(z))
    # The paper's softmax over all positions gives different matrices (per image, asymmetric).
    m = icsd_matrices(z)
    assert m.shape == (2, 5, 5)
    assert not torch.allclose(m, m.transpose(1, 2))


def test_paper_matrix_is_the_kl_of_flattened_spatial_softmaxes_for_any_c():
    z = torch.randn(2, 6, 3, 4)
    q = torch.softmax(z.flatten(2), dim=2)
    direct = (q[:, :, None] * (q[:, :, None].log() - q[:, None].log())).sum(-1)
    torch.testing.assert_close(icsd_matrices(z), direct, rtol=1e-4, atol=1e-6)


def test_as_released_zero_for_identical_logits_and_gradient_to_student_only():
    # The paper variant's contract is in test_contract.py (default config); the released one here.
    z = torch.randn(2, 4, 5, 5)
    assert icsd_loss(z, z.clone(), as_released=True).item() == pytest.approx(0.0, abs=1e-9)
    s, t = torch.randn(2, 4, 5, 5, requires_grad=True), torch.randn(2, 4, 5, 5, requires_grad=True)
    build_term("aicsd", as_released=True)(Taps.from_logits(s), Taps.from_logits(t)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def test_batch_composition_released_dependent():
    s, t = torch.randn(4, 4, 5, 5), torch.randn(4, 4, 5, 5)
    assert not build_term("aicsd", as_released=True).batch_decomposable
    released = icsd_loss(s, t, as_released=True).item()  # one matrix per batch, and a /B
    halves = (icsd_loss(s[:2], t[:2], as_released=True) + icsd_loss(s[2:], t[2:], as_released=True)).item()
    assert not math.isclose(released, halves / 2, rel_tol=1e-3)


def test_as_released_fp32_under_autocast_and_input_size():
    s = torch.randn(2, 4, 4, 4, dtype=torch.bfloat16)
    t = torch.randn(2, 4, 8, 8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = build_term("aicsd", as_released=True)(Taps.from_logits(s), Taps.from_logits(t))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # at_input_size: both logits upsampled to the student's input size.
    s, t = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    taps = Taps(stages=[], feat=None, logits_low=s, size=(16, 16))
    loss = build_term("aicsd", at_input_size=True)(taps, Taps.from_logits(t))
    up = torch.nn.functional.interpolate
    expected = icsd_loss(up(s, (16, 16), mode="bilinear"), up(t, (16, 16), mode="bilinear"))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_alw_schedule_of_the_aicsd_method():
    # 1200 iterations over E = 120 stages: 10 iterations per "epoch", α(it) = ⌊it / 10⌋ / 120.
    method = load_config(["method=aicsd", "train.iterations=1200"]).method
    kd, icsd = method.terms["kd"].schedule, method.terms["aicsd"].schedule
    for it, alpha in [(0, 0.0), (9, 0.0), (10, 1 / 120), (605, 60 / 120), (1199, 119 / 120)]:
        assert schedule_multiplier(method.task_schedule, it, 1200) == pytest.approx(alpha)
        assert schedule_multiplier(icsd, it, 1200) == pytest.approx(alpha)
        assert schedule_multiplier(kd, it, 1200) == pytest.approx(1 - alpha)


def test_alw_objective_parts():
    # L = α·(CE + 0.4·CE_aux + λ_ICSD·ICSD) + (1 − α)·λ_KD·KD at it = 605 of 1200 (α = 1/2).
    method = load_config(["method=aicsd", "train.iterations=1200"]).method
    obj = Objective(method, TermContext(num_classes=3, total_steps=1200, aux_weight=0.4))
    s = Taps(stages=[], feat=None, logits_low=torch.randn(2, 3, 4, 4), aux_logits=torch.randn(2, 3, 4, 4))
    s.size = (8, 8)
    t = Taps.from_logits(torch.randn(2, 3, 4, 4))
    labels = torch.randint(0, 3, (2, 8, 8))
    _, parts = obj(s, t, labels, step=605)
    ce = cross_entropy(s.logits, labels, 255)
    ce_aux = cross_entropy(s.aux_logits, labels, 255)
    icsd, kd = icsd_loss(s.logits_low, t.logits_low), kd_loss(s.logits_low, t.logits_low)
    expected = torch.stack([0.5 * ce, 0.5 * 0.4 * ce_aux, 0.5 * 9500 * icsd, 0.5 * 2.857 * kd])
    torch.testing.assert_close(parts, expected)
