"""RDD: both stages against values computed by hand, the switch, and the task-loss replacement."""

import math

import pytest
import torch

from bench.config.schema import MethodConfig
from bench.errors import ConfigError
from bench.methods import Objective, TermContext, build_term, cross_entropy
from bench.methods.terms.kd import KDConfig
from bench.methods.terms.rdd import RDDConfig, hard_pixels, tfe_loss, tfe_weights, tse_loss
from bench.models import Taps

LN2 = math.log(2)


def _gt_logits(p_gt, labels):
    """``[1, 2, 1, N]`` logits whose softmax gives probability ``p_gt[i]`` to class ``labels[i]``."""
    p = torch.tensor(p_gt)
    p0 = torch.where(torch.tensor(labels) == 1, 1 - p, p)
    return torch.stack([p0.log(), (1 - p0).log()]).reshape(1, 2, 1, len(p_gt))


def _ctx(total_steps=10, aux_weight=0.4):
    return TermContext(num_classes=2, ignore_index=255, total_steps=total_steps, aux_weight=aux_weight)


def _rdd(**params):
    return build_term("rdd", _ctx(params.pop("total_steps", 10), params.pop("aux_weight", 0.4)), **params)


def test_tfe_weights_by_hand():
    # Pixel 0: main σ = (1/2, 1/2), aux σ = (3/4, 1/4) → w = exp(−KL(aux ‖ main)); pixel 1 agrees → 1.
    main = torch.tensor([[0.0, 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)
    aux = torch.tensor([[math.log(3), 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    w = tfe_weights(main, aux)
    assert w.flatten().tolist() == pytest.approx([math.exp(-kl), 1.0], rel=1e-6)


def test_tfe_loss_by_hand_and_equal_to_ce_when_the_teacher_agrees():
    # Uniform student → CE = ln2 at every pixel; pixel 2 ignored (no CE, not in the denominator).
    s = torch.zeros(1, 2, 1, 3)
    labels = torch.tensor([[[0, 1, 255]]])
    w = torch.tensor([[[0.5, 1.0, 0.3]]])
    assert tfe_loss(s, w, labels, 255).item() == pytest.approx((0.5 * LN2 + LN2) / 2, rel=1e-6)
    # w ≡ 1 (teacher heads agree): exactly the baseline CE, also with upsampling to the label size.
    s, t = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    labels = torch.randint(0, 2, (2, 8, 8))
    labels[0, 0] = 255
    loss = tfe_loss(s, tfe_weights(t, t), labels, 255)
    assert loss.item() == pytest.approx(cross_entropy(s, labels, 255).item(), rel=1e-6)


def test_hard_pixels_threshold_min_kept_and_too_few_valid():
    labels = torch.tensor([[[0, 1, 0, 255]]])
    logits = _gt_logits([0.9, 0.6, 0.3, 0.5], [0, 1, 0, 0])
    hard = lambda k: hard_pixels(logits, labels, 255, 0.7, k).flatten().tolist()  # noqa: E731
    assert hard(0) == [False, True, True, False]  # p ≤ 0.7, ignore never hard
    assert hard(2) == [False, True, True, False]  # 2nd smallest (0.6) < θ: θ stays
    assert hard(3) == [True, True, True, False]  # 3rd smallest 0.9 > θ: θ' = 0.9
    assert hard(100) == [True, True, True, False]  # fewer valid pixels than min_kept: all valid, no crash


def test_tse_loss_masks_by_hand():
    labels = torch.tensor([[[0, 1, 0, 1]]])
    s = _gt_logits([0.9, 0.6, 0.3, 0.5], [0, 1, 0, 1])  # hard_s = [F, T, T, T]
    t = _gt_logits([0.2, 0.8, 0.3, 0.9], [0, 1, 0, 1])  # hard_t = [T, F, T, F]
    ce = [-math.log(p) for p in (0.9, 0.6, 0.3, 0.5)]
    by_mode = {"xor": [0, 1, 3], "or": [0, 1, 2, 3], "and": [2], "ohem": [1, 2, 3]}
    for mode, kept in by_mode.items():
        value = tse_loss(s, t, labels, 255, 0.7, 0, mode).item()
        assert value == pytest.approx(sum(ce[i] for i in kept) / len(kept), rel=1e-5), mode
    # Class weights (2 for class 0, 1 for class 1): Σ w_y CE / Σ w_y over the XOR pixels 0, 1, 3.
    weighted = tse_loss(s, t, labels, 255, 0.7, 0, "xor", torch.tensor([2.0, 1.0])).item()
    assert weighted == pytest.approx((2 * ce[0] + ce[1] + ce[3]) / 4, rel=1e-5)


def test_tse_empty_selection_is_zero_not_nan():
    labels = torch.tensor([[[0, 0]]])
    z = _gt_logits([0.9, 0.95], [0, 0])  # easy for both: nothing selected
    assert tse_loss(z, z.clone(), labels, 255, 0.7, 0).item() == 0.0
    # Only ignore pixels and min_kept far above the valid count: no crash either.
    assert tse_loss(z, z, torch.full((1, 1, 2), 255), 255, 0.7, 100_000).item() == 0.0


def test_switch_between_the_stages():
    s = Taps.from_logits(torch.randn(2, 2, 4, 4), aux_logits=torch.randn(2, 2, 4, 4))
    t = Taps.from_logits(torch.randn(2, 2, 4, 4), aux_logits=torch.randn(2, 2, 4, 4))
    labels = torch.randint(0, 2, (2, 4, 4))
    term = _rdd(warmup=0.5, min_kept=0.0)  # W = 5 of 10 steps
    assert term.warmup_steps == 5 and _rdd(warmup=3).warmup_steps == 3
    w = tfe_weights(t.logits_low, t.aux_logits)
    tfe = tfe_loss(s.logits_low, w, labels, 255) + 0.4 * tfe_loss(s.aux_logits, w, labels, 255)
    tse = tse_loss(s.logits_low, t.logits_low, labels, 255) + 0.4 * tse_loss(
        s.aux_logits, t.aux_logits, labels, 255
    )
    assert term(s, t, labels, step=4).item() == pytest.approx(tfe.item(), rel=1e-6)
    assert term(s, t, labels, step=5).item() == pytest.approx(tse.item(), rel=1e-6)
    assert _rdd(warmup=0.0, min_kept=0.0)(s, t, labels, step=0).item() == pytest.approx(tse.item(), rel=1e-6)
    # Linear switch: λ = (7 − 10)/(5 − 10) = 0.6 at step 7 → 0.4·TSE + 0.6·TFE; λ = 1 at W.
    linear = _rdd(warmup=0.5, min_kept=0.0, switch="linear")
    assert linear(s, t, labels, step=7).item() == pytest.approx(0.4 * tse.item() + 0.6 * tfe.item(), rel=1e-5)
    assert linear(s, t, labels, step=5).item() == pytest.approx(tfe.item(), rel=1e-5)


def test_replaces_the_task_loss_in_the_objective_with_aux_weight():
    terms = {"rdd": RDDConfig(warmup=0.5, min_kept=0.0), "kd": KDConfig()}
    obj = Objective(MethodConfig(name="rdd", terms=terms), _ctx(aux_weight=0.25))
    s = Taps.from_logits(torch.randn(2, 2, 4, 4), aux_logits=torch.randn(2, 2, 4, 4))
    t = Taps.from_logits(torch.randn(2, 2, 4, 4), aux_logits=torch.randn(2, 2, 4, 4))
    labels = torch.randint(0, 2, (2, 4, 4))
    _, parts = obj(s, t, labels, step=0)
    w = tfe_weights(t.logits_low, t.aux_logits)
    expected = tfe_loss(s.logits_low, w, labels, 255) + 0.25 * tfe_loss(s.aux_logits, w, labels, 255)
    assert parts[0] == 0 and parts[1] == 0  # plain CE left out
    assert parts[2].item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts[3] > 0  # kd composes with it
    # Without a student aux head (or aux_weight 0) only the main head's loss.
    main_only = _rdd(warmup=0.5, aux_weight=0.0)(s, t, labels, step=0)
    assert main_only.item() == pytest.approx(tfe_loss(s.logits_low, w, labels, 255).item(), rel=1e-6)


def test_batch_composition():
    # TFE: a per-pixel mean → the whole batch is the mean of equal-size halves. TSE: the min_kept cut
    # is a quantile over the batch → here the first image alone keeps more of its pixels.
    s, t = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    labels = torch.randint(0, 2, (2, 4, 4))
    w = tfe_weights(t, t.flip(1))
    whole = tfe_loss(s, w, labels, 255).item()
    halves = (tfe_loss(s[:1], w[:1], labels[:1], 255) + tfe_loss(s[1:], w[1:], labels[1:], 255)).item() / 2
    assert whole == pytest.approx(halves, rel=1e-6)
    # min_kept = half of the pixels. Easy image alone: the 2nd smallest of (0.8, 0.85, 0.9, 0.95) is
    # 0.85 > θ → 2 hard pixels. Next to an image of 0.1s: the 4th smallest of 8 is 0.1 → θ stays 0.7
    # and none of the easy image's pixels is hard.
    easy = _gt_logits([0.8, 0.85, 0.9, 0.95], [0] * 4).reshape(1, 2, 2, 2)
    hard = _gt_logits([0.1] * 4, [0] * 4).reshape(1, 2, 2, 2)
    logits, lab = torch.cat([easy, hard]), torch.zeros(2, 2, 2, dtype=torch.long)
    assert hard_pixels(logits[:1], lab[:1], 255, 0.7, 2).sum() == 2
    assert hard_pixels(logits, lab, 255, 0.7, 4)[0].sum() == 0


def test_sizes_from_the_labels():
    s = Taps.from_logits(torch.randn(2, 2, 4, 4), aux_logits=torch.randn(2, 2, 2, 2))
    t = Taps.from_logits(torch.randn(2, 2, 4, 4), aux_logits=torch.randn(2, 2, 2, 2))
    labels = torch.randint(0, 2, (2, 12, 20))  # any label size: no hard-coded crop
    for step in (0, 9):
        assert torch.isfinite(_rdd()(s, t, labels, step=step))


def test_config_errors():
    with pytest.raises(ConfigError, match="mask_mode='nand'"):
        _rdd(mask_mode="nand")
    with pytest.raises(ConfigError, match="aux head"):
        build_term("rdd", TermContext(num_classes=2, teacher_channels={"feat": 8, "logits": 2}))
    with pytest.raises(ConfigError, match="3 values for 2 classes"):
        _rdd(class_weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="aux_logits"):
        z = torch.randn(1, 2, 2, 2)
        _rdd()(Taps.from_logits(z), Taps.from_logits(z), torch.zeros(1, 2, 2, dtype=torch.long))
