"""The CIRKD memory terms: values by hand, the per-class FIFO queues, resume and determinism."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from bench.engine.trainer import Trainer, train_run
from bench.errors import ConfigError
from bench.methods import TermContext, build_term
from bench.methods.terms.cirkd_memory import class_entries, enqueue, memory_kd
from bench.models import Taps

from ..conftest import CrashAt, tiny_config

C, DS, DT = 3, 4, 5


def _ctx(**kw):
    return TermContext(
        num_classes=C, ignore_index=255, student_channels={"feat": DS}, teacher_channels={"feat": DT}, **kw
    )


def _term(**params):
    # Small queues; contrast sizes that cover every slot make the bank the whole queue (the KL is
    # invariant to the order of bank entries, so such a loss does not depend on the sampling).
    base = dict(pixel_memory_size=6, region_memory_size=4, pixel_contrast_size=100, region_contrast_size=100)
    return build_term("cirkd_memory", _ctx(), **{**base, **params})


def _taps(feat):
    return Taps(stages=[], feat=feat, logits_low=torch.zeros(feat.shape[0], C, *feat.shape[-2:]))


def _batch(seed=0, b=2, h=4, w=4):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(b, DS, h, w, generator=g)
    t = torch.randn(b, DT, h, w, generator=g)
    labels = torch.randint(0, C, (b, h, w), generator=g)
    labels[0, 0, :2] = 255
    return s, t, labels


def test_memory_kd_value_by_hand():
    # τ = T_c = 1, bank = the two axes. Teacher anchor (0, 1) → logits (0, 1); student (1, 0) → (1, 0).
    # KL = q·ln(q/p) + p·ln(p/q) with p = e/(1+e), q = 1/(1+e): = (p − q)·ln(p/q) = (e − 1)/(e + 1).
    bank = torch.eye(2)
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    e = math.e
    assert memory_kd(s, t, bank, 1.0, 1.0).item() == pytest.approx((e - 1) / (e + 1), rel=1e-6)
    # T_c = 2: logits halved, then × T_c² = 4: p = σ(1/2).
    p = 1 / (1 + math.exp(-0.5))
    assert memory_kd(s, t, bank, 1.0, 2.0).item() == pytest.approx(4 * (2 * p - 1) * math.log(p / (1 - p)))
    # τ = 0.5 doubles the logits; the mean is over anchors (two identical anchors: same value).
    p = 1 / (1 + math.exp(-2))
    s2, t2 = s.repeat(2, 1), t.repeat(2, 1)
    assert memory_kd(s2, t2, bank, 0.5, 1.0).item() == pytest.approx((2 * p - 1) * math.log(p / (1 - p)))


def test_memory_kd_zero_for_identical_anchors():
    a = F.normalize(torch.randn(7, 5), dim=1)
    bank = F.normalize(torch.randn(9, 5), dim=1)
    assert memory_kd(a, a.clone(), bank).item() == pytest.approx(0.0, abs=1e-6)


def _reference_fifo(queue, ptr, values, classes):
    """One row at a time: the definition of a per-class FIFO ring buffer."""
    for v, c in zip(values, classes.tolist(), strict=True):
        queue[c, ptr[c]] = v
        ptr[c] = (ptr[c] + 1) % queue.shape[1]


def test_enqueue_is_a_per_class_fifo():
    g = torch.Generator().manual_seed(0)
    q, ptr = torch.zeros(3, 4, 2), torch.zeros(3, dtype=torch.long)
    q_ref, ptr_ref = q.clone(), ptr.clone()
    for n in (3, 7, 0, 11, 2):  # some steps overflow a class (more rows than slots)
        values = torch.randn(n, 2, generator=g)
        classes = torch.randint(0, 3, (n,), generator=g)
        enqueue(q, ptr, values, classes)
        _reference_fifo(q_ref, ptr_ref, values, classes)
        assert torch.equal(q, q_ref) and torch.equal(ptr, ptr_ref)


def test_enqueue_order_by_hand():
    q, ptr = torch.zeros(2, 3, 1), torch.tensor([2, 0])
    # Class 0 gets 10, 30, 40, 50 (in this order) starting at slot 2: 10→2, 30→0, 40→1, 50→2.
    enqueue(q, ptr, torch.tensor([[10.0], [20.0], [30.0], [40.0], [50.0]]), torch.tensor([0, 1, 0, 0, 0]))
    assert q[0, :, 0].tolist() == [30.0, 40.0, 50.0]
    assert q[1, :, 0].tolist() == [20.0, 0.0, 0.0]
    assert ptr.tolist() == [0, 1]


def test_class_entries_means_caps_and_ignore():
    # Image 0: class 1 at 3 pixels (one of them ignore → 2), image 1: class 0 at 2, class 1 at 2.
    image0 = [[1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [1.0, 0.0]]
    image1 = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    emb = torch.tensor([image0, image1]).transpose(1, 2).reshape(2, 2, 1, 4)  # [B, D, h, w]
    labels = torch.tensor([[[1, 1, 255, 2]], [[0, 0, 1, 1]]])
    regions, region_cls, pixels, pixel_cls = class_entries(emb, labels, 3, 255, per_class=1)
    assert region_cls.tolist() == [1, 2, 0, 1]  # image-major, then class
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(regions, torch.tensor([[s, s], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert pixel_cls.tolist() == [1, 2, 0, 1]  # one random pixel per (image, class)
    assert pixels[0].tolist() in ([1.0, 0.0], [0.0, 1.0])  # never the ignore pixel (5, 5)
    _, _, pixels, pixel_cls = class_entries(emb, labels, 3, 255, per_class=16)
    assert pixel_cls.tolist() == [1, 1, 2, 0, 0, 1, 1]  # min(n, 16) each


def test_forward_enqueues_teacher_embeddings_then_distils():
    term = _term(pixels_per_class=16)
    s, t, labels = _batch()
    term(_taps(s), _taps(t), labels)
    unit = F.normalize(t, dim=1)
    for c in range(C):
        images = [b for b in range(2) if (labels[b] == c).any()]
        assert term.region_ptr[c].item() == len(images) % 4
        last = images[-1]  # the newest region entry of class c: the last image containing it
        mean = F.normalize(unit[last].flatten(1)[:, labels[last].flatten() == c].mean(1), dim=0)
        torch.testing.assert_close(term.region_queue[c, (term.region_ptr[c] - 1) % 4], mean)
        n_pixels = int((labels == c).sum())
        assert term.pixel_ptr[c].item() == n_pixels % 6
    # eval(): a pure function of the queues, nothing enqueued.
    before = term.state_dict()
    term.eval()
    term(_taps(s), _taps(t), labels)
    assert all(torch.equal(v, term.state_dict()[k]) for k, v in before.items())


def test_queues_round_trip_through_state_dict():
    torch.manual_seed(0)
    term = _term(pixel_contrast_size=4, region_contrast_size=2)  # sampled banks
    for seed in range(3):
        s, t, labels = _batch(seed)
        term(_taps(s), _taps(t), labels)
    torch.manual_seed(1)
    resumed = _term(pixel_contrast_size=4, region_contrast_size=2)
    assert not torch.equal(resumed.pixel_queue, term.pixel_queue)
    resumed.load_state_dict(term.state_dict())
    for name in ("pixel_queue", "pixel_ptr", "region_queue", "region_ptr"):
        assert torch.equal(getattr(resumed, name), getattr(term, name))
    s, t, labels = _batch(7)
    torch.manual_seed(5)
    a = term(_taps(s), _taps(t), labels)
    torch.manual_seed(5)
    b = resumed(_taps(s), _taps(t), labels)
    assert a.item() == b.item()
    assert torch.equal(resumed.pixel_queue, term.pixel_queue)


def test_deterministic_under_the_seed_on_one_device_without_process_group():
    assert not (dist.is_available() and dist.is_initialized())

    def run():
        torch.manual_seed(3)
        term = _term(pixel_contrast_size=4, region_contrast_size=2, pixels_per_class=2)
        losses = [term(_taps(s), _taps(t), lab).item() for s, t, lab in map(_batch, range(3))]
        return losses, term.pixel_queue.clone()

    (l1, q1), (l2, q2) = run(), run()
    assert l1 == l2 and torch.equal(q1, q2)


def test_ignore_pixels_are_neither_anchors_nor_enqueued():
    term = _term()
    s, t, labels = _batch()
    term.eval()
    loss = term(_taps(s), _taps(t), labels)
    # The same loss from the valid anchors only (bank = whole queues, order-free).
    with torch.no_grad():
        s_emb = F.normalize(term.head(s), dim=1).permute(0, 2, 3, 1).reshape(-1, DT)
    t_emb = F.normalize(t, dim=1).permute(0, 2, 3, 1).reshape(-1, DT)
    valid = labels.reshape(-1) != 255
    pixel_bank, region_bank = term.pixel_queue.reshape(-1, DT), term.region_queue.reshape(-1, DT)
    expected = 0.1 * memory_kd(s_emb[valid], t_emb[valid], pixel_bank)
    expected += 0.1 * memory_kd(s_emb[valid], t_emb[valid], region_bank)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # All ignore: zero (with a graph), nothing enqueued.
    term.train()
    ptr = term.pixel_ptr.clone()
    s.requires_grad_(True)
    zero = term(_taps(s), _taps(t), torch.full_like(labels, 255))
    zero.backward()
    assert zero.item() == 0.0 and torch.equal(term.pixel_ptr, ptr)


def test_batch_composition_given_the_queues():
    # A mean over anchors: with equal valid counts, the whole batch is the mean of its halves.
    term = _term()
    term.eval()
    s, t, _ = _batch(b=4)
    labels = torch.randint(0, C, (4, 4, 4))
    whole = term(_taps(s), _taps(t), labels).item()
    halves = sum(term(_taps(s[i : i + 2]), _taps(t[i : i + 2]), labels[i : i + 2]).item() for i in (0, 2)) / 2
    assert whole == pytest.approx(halves, rel=1e-5)


def test_the_head_is_the_students_and_the_queues_take_no_gradient():
    term = _term()
    assert {id(p) for p in term.student_parameters()} == {id(p) for p in term.head.parameters()}
    assert not term.pixel_queue.requires_grad and not term.region_queue.requires_grad


def test_memory_estimate_and_missing_channels():
    ctx = _ctx(batch_size=16, feature_size=(64, 128))
    ctx.num_classes = 19
    term = build_term("cirkd_memory", ctx, pixel_memory_size=10, region_memory_size=10)
    # fp32: queues 19·(10 + 10)·D_t; 5 maps (head activations, unit embeddings) and 3 anchor copies of
    # D_t each per anchor (anchors = positions = 16·64·128); 2 copies of the widest bank (slots =
    # 19·min(4096//19 + 1, 10) = 190 = 19·min(1024//19 + 1, 10)); 3 blocks of 8·2^19 // 190 rows.
    anchors = 16 * 64 * 128
    rows = 8 * 2**19 // 190
    expected = 4 * (19 * 20 * DT + 8 * anchors * DT + 2 * 190 * DT + 3 * rows * 190) / 2**20
    assert term.estimate_memory_mb() == pytest.approx(expected)
    fewer = build_term("cirkd_memory", ctx, pixel_memory_size=10, region_memory_size=10, max_anchors=1000)
    fewer_expected = (
        4 * (19 * 20 * DT + 5 * anchors * DT + 3 * 1000 * DT + 2 * 190 * DT + 3 * 1000 * 190) / 2**20
    )
    assert fewer.estimate_memory_mb() == pytest.approx(fewer_expected) and fewer_expected < expected
    with pytest.raises(ConfigError, match="student_channels"):
        build_term("cirkd_memory", TermContext(num_classes=3))


def test_max_anchors_subsamples():
    term = _term(max_anchors=5)
    s, t, labels = _batch()
    assert torch.isfinite(term(_taps(s), _taps(t), labels))


@pytest.mark.slow
def test_training_resumes_with_the_queues_bit_identically(tmp_path, teachers_dir):
    common = [
        "method=cirkd",
        f"teachers_dir={teachers_dir}",
        "train.iterations=6",
        "train.checkpoint_interval=2",
        "method.terms.cirkd_memory.pixel_memory_size=40",
        "method.terms.cirkd_memory.region_memory_size=8",
    ]
    full = Trainer(tiny_config(tmp_path / "full", *common))
    row = full.fit()
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(tiny_config(tmp_path / "crash", *common), callbacks=[CrashAt(5)])  # resumes at 4
    resumed = Trainer(tiny_config(tmp_path / "crash", *common, "resume=true"))
    again = resumed.fit()
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in row["history"]]
    for name, value in full.objective.terms["cirkd_memory"].state_dict().items():
        assert torch.equal(value, resumed.objective.terms["cirkd_memory"].state_dict()[name]), name


def test_memory_kd_gradient_matches_autograd_of_the_plain_formula(monkeypatch):
    # Blocks of 3 anchors (several per call): the fused gradient must equal autograd's on the whole
    # logit matrices.
    from bench.methods import relational

    monkeypatch.setattr(relational, "CHUNK_ELEMENTS", 16)
    monkeypatch.setattr(relational, "MIN_ROWS", 3)
    s, t = F.normalize(torch.randn(10, 5), dim=1), F.normalize(torch.randn(10, 5), dim=1)
    bank = F.normalize(torch.randn(7, 5), dim=1)
    a, b = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    loss = memory_kd(a, t, bank, 0.1, 2.0)
    (loss * 3).backward()
    log_s = F.log_softmax(b @ bank.T / 0.2, dim=1)
    log_t = F.log_softmax(t @ bank.T / 0.2, dim=1)
    ref = F.kl_div(log_s, log_t, reduction="batchmean", log_target=True) * 4
    (ref * 3).backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(a.grad, b.grad)
