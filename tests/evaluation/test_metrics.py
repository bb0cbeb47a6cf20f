"""Evaluation metrics against confusion matrices computed by hand."""

import math

import pytest
import torch

from bench.data.base import reduce_zero_label
from bench.evaluation import ConfusionMeter, confusion_matrix, metrics_from_confusion

IGN = 255  # ignore


def test_confusion_matrix_by_hand_with_ignore():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, IGN, IGN]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm = confusion_matrix(pred, target, num_classes=3)
    # rows = ground truth, cols = prediction; the two ignore pixels are dropped
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_metrics_by_hand():
    cm = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    m = metrics_from_confusion(cm)
    # IoU: c0 = 1/(2+2-1) = 1/3; c1 = 2/(2+3-2) = 2/3; c2 = 1/(2+1-1) = 1/2
    assert m.iou == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert m.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m.aacc == pytest.approx(4 / 6)
    assert m.acc == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert m.macc == pytest.approx(2 / 3)


def test_class_absent_from_gt_and_prediction_is_excluded_from_the_mean():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 0, 1, 0])
    m = metrics_from_confusion(confusion_matrix(pred, target, num_classes=3))
    assert math.isnan(m.iou[2]) and math.isnan(m.acc[2])
    assert m.miou == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m.as_dict()["iou"][2] is None  # JSON-safe


def test_class_predicted_but_absent_from_gt_counts_as_zero():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])
    m = metrics_from_confusion(confusion_matrix(pred, target, num_classes=3))
    assert m.iou[2] == 0.0 and math.isnan(m.acc[2])
    assert m.miou == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_meter_accumulates_batches():
    meter = ConfusionMeter(3)
    meter.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    meter.update(torch.tensor([2, 2]), torch.tensor([2, IGN]))
    assert meter.compute().miou == 1.0


def test_labels_outside_the_class_range_are_an_error():
    with pytest.raises(ValueError, match=r"\[7\]"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), num_classes=3)


def test_reduce_zero_label():
    label = torch.tensor([0, 1, 2, 150, IGN])
    assert reduce_zero_label(label).tolist() == [IGN, 0, 1, 149, IGN]


def test_meter_reports_out_of_range_labels_at_compute_only():
    meter = ConfusionMeter(3)
    meter.update(torch.tensor([0, 1, 2]), torch.tensor([0, 9, 255]))  # no host sync, no error yet
    meter.update(torch.tensor([0]), torch.tensor([-2]))
    with pytest.raises(ValueError, match=r"2 labels \(from -2 to 9\) are outside 0\.\.2"):
        meter.compute()


def test_same_size_batches_group_consecutive_images_of_one_size():
    from bench.evaluation import same_size_batches

    sizes = [(4, 4), (4, 4), (4, 4), (2, 6), (4, 4)]
    items = [(torch.zeros(1, 3, *s), torch.zeros(1, *s, dtype=torch.long)) for s in sizes]
    out = [(x.shape[0], tuple(x.shape[-2:])) for x, _ in same_size_batches(items, 2)]
    assert out == [(2, (4, 4)), (1, (4, 4)), (1, (2, 6)), (1, (4, 4))]
