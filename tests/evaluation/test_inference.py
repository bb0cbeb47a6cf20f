"""Inference protocols: stride padding, sliding window and flip, on models with known behaviour."""

import pytest
import torch
from torch import nn

from bench.config.schema import EvalConfig
from bench.evaluation import evaluate, predict
from bench.models import Taps


class Pointwise(nn.Module):
    """Logits depend on each pixel alone: any window, padding or flip must give the same answer."""

    def __init__(self, output_stride: int = 8) -> None:
        super().__init__()
        self.output_stride = output_stride
        self.conv = nn.Conv2d(3, 4, 1)
        self.shapes: list[tuple[int, int]] = []

    def forward(self, images, with_aux=True):
        self.shapes.append(tuple(images.shape[-2:]))
        return Taps.from_logits(self.conv(images.float() / 255))


def _images(h=37, w=53):
    return torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8)


def test_whole_image_pads_to_the_output_stride_and_crops_back():
    model, images = Pointwise(8), _images()
    probs = predict(model, images, EvalConfig(mode="whole"))
    assert probs.shape == (2, 4, 37, 53)
    assert model.shapes == [(40, 56)]
    expected = model.conv(images.float() / 255).softmax(1)
    torch.testing.assert_close(probs, expected)


@pytest.mark.parametrize(("crop", "stride"), [([16, 16], [8, 8]), ([24, 32], [16, 11]), ([64, 64], [32, 32])])
def test_slide_equals_whole_for_a_pointwise_model(crop, stride):
    model, images = Pointwise(8), _images()
    whole = predict(model, images, EvalConfig(mode="whole"))
    slide = predict(model, images, EvalConfig(mode="slide", crop_size=crop, stride=stride))
    torch.testing.assert_close(slide, whole)


def test_slide_windows_cover_the_image_with_border_aligned_last_window():
    model = Pointwise(1)
    predict(model, _images(20, 30), EvalConfig(mode="slide", crop_size=[10, 10], stride=[7, 7]))
    assert len(model.shapes) == 3 * 4 and set(model.shapes) == {(10, 10)}  # rows 0,7,10; cols 0,7,14,20


def test_flip_averages_with_the_mirrored_prediction():
    class LeftBiased(Pointwise):
        def forward(self, images, with_aux=True):
            x = torch.linspace(0, 1, images.shape[-1]).expand(images.shape[0], 1, *images.shape[-2:])
            return Taps.from_logits(torch.cat([x, 1 - x], 1) * 4)

    model, images = LeftBiased(1), _images(4, 9)
    plain = predict(model, images, EvalConfig(flip=False))
    flipped = predict(model, images, EvalConfig(flip=True))
    torch.testing.assert_close(flipped, torch.full_like(flipped, 0.5))  # position bias cancels out
    assert not torch.allclose(plain, flipped)


def test_evaluate_restores_train_mode_and_scores():
    model = Pointwise(8).train()
    data = [(img, torch.zeros(37, 53, dtype=torch.long)) for img in _images()]
    metrics = evaluate(model, data, EvalConfig(), num_classes=4, ignore_index=255, device=torch.device("cpu"))
    assert model.training
    assert 0 <= metrics.aacc <= 1 and len(metrics.iou) == 4


def test_evaluate_predicts_the_first_class_of_a_tie_as_argmax_does():
    """Equal logits for classes 1 and 2 everywhere (class 0 lower): every pixel is predicted 1."""
    model = Pointwise(8)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.copy_(torch.tensor([0.0, 1.0, 1.0, -1.0]))
    labels = torch.ones(37, 53, dtype=torch.long)
    labels[:, :10] = 2
    data = [(img, labels) for img in _images()]
    metrics = evaluate(model, data, EvalConfig(), num_classes=4, ignore_index=255, device=torch.device("cpu"))
    assert metrics.aacc == pytest.approx((53 - 10) / 53)  # class 1 right, class 2 predicted as 1


def test_keep_ratio_resize_predicts_at_the_base_scale_and_returns_full_size():
    model, images = Pointwise(8), _images(40, 100)
    probs = predict(model, images, EvalConfig(resize=[50, 20]))  # box long 50, short 20
    assert probs.shape == (2, 4, 40, 100)
    assert model.shapes == [(24, 56)]  # factor min(50/100, 20/40) = 0.5 → 20×50, padded to OS 8
    expected = model.conv(images.float() / 255).softmax(1)
    assert (probs - expected).abs().mean() < 0.05  # a pointwise model survives the round trip


def test_slide_averages_logits_then_softmax_like_mmseg():
    """Overlapping windows average logits (mmseg's slide_inference), not probabilities: a model whose
    logits depend on the window gives softmax(mean of logits) where two windows overlap."""

    class WindowDependent(Pointwise):
        def forward(self, images, with_aux=True):
            self.shapes.append(tuple(images.shape[-2:]))
            b, _, h, w = images.shape
            left = (images[:, :1].float().mean() > -1).float() * float(len(self.shapes) == 1)
            logits = torch.stack([torch.full((b, h, w), 4.0 * left), torch.zeros(b, h, w)], 1)
            return Taps.from_logits(logits)  # first window: [4, 0]; second window: [0, 0]

    model = WindowDependent(1)
    probs = predict(model, _images(1, 12)[:1], EvalConfig(mode="slide", crop_size=[1, 8], stride=[1, 4]))
    overlap = probs[0, :, 0, 4:8]  # covered by both windows: logits (4 + 0) / 2 = 2 against 0
    expected = torch.tensor([2.0, 0.0]).softmax(0)[:, None].expand(2, 4)
    torch.testing.assert_close(overlap, expected)
    # averaging probabilities would give (softmax([4,0]) + 0.5) / 2 = 0.741, not 0.881
    assert abs(overlap[0, 0].item() - 0.8808) < 1e-3
