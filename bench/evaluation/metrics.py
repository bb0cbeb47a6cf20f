"""Confusion-matrix segmentation metrics (mIoU, pixel accuracy, mean accuracy, per-class IoU).

Conventions (those of mmsegmentation and the CIRKD codebase):

- Pixels whose ground truth is ``ignore_index`` are left out entirely.
- ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``. A class absent from both ground truth and prediction over
  the whole evaluated set has 0/0 and is reported as NaN and **excluded from the mean** (mIoU is
  the mean over classes that appear in the ground truth or the prediction). A class predicted but
  absent from the ground truth has IoU 0 and counts.
- ``aAcc = Σ TP / Σ valid pixels``; ``mAcc`` = mean over classes present in the ground truth of
  ``TP_c / (TP_c + FN_c)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def confusion_counts(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """``C² + 1`` int64 counts on the inputs' device without a host sync: the row-major ``[C, C]``
    confusion matrix (rows = ground truth), then the number of labels outside ``0..C-1`` that are not
    ``ignore_index`` (counted, not scored)."""
    target, pred = target.reshape(-1).long(), pred.reshape(-1).long()
    bad = _outside(target, num_classes, ignore_index)
    idx = torch.where(bad, num_classes**2, target * num_classes + pred)
    return torch.bincount(idx[target != ignore_index], minlength=num_classes**2 + 1)


def _outside(target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Labels outside ``0..C-1`` that are not ``ignore_index``."""
    return (target != ignore_index) & ((target < 0) | (target >= num_classes))


def _outside_error(target: torch.Tensor, num_classes: int, ignore_index: int) -> ValueError:
    bad = target[_outside(target, num_classes, ignore_index)].unique().tolist()
    return ValueError(f"labels {bad} are outside 0..{num_classes - 1} and not ignore_index={ignore_index}")


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """``[C, C]`` int64 counts, rows = ground truth, columns = prediction, ignore pixels dropped."""
    counts = confusion_counts(pred, target, num_classes, ignore_index)
    if counts[-1] > 0:
        raise _outside_error(target, num_classes, ignore_index)
    return counts[:-1].reshape(num_classes, num_classes)


@dataclass
class Metrics:
    """Scores as fractions of 1 (the arithmetic's unit); :meth:`in_percent` is what rows, trackers and
    logs show (:mod:`bench.utils.units`)."""

    miou: float
    aacc: float
    macc: float
    iou: list[float]  # per class, NaN where the class is absent from ground truth and prediction
    acc: list[float]  # per class, NaN where the class is absent from the ground truth

    def as_dict(self) -> dict:
        nan_to_none = lambda xs: [None if math.isnan(x) else x for x in xs]  # noqa: E731 (JSON has no NaN)
        return {
            "miou": self.miou,
            "aacc": self.aacc,
            "macc": self.macc,
            "iou": nan_to_none(self.iou),
            "acc": nan_to_none(self.acc),
        }

    def in_percent(self) -> dict:
        """:meth:`as_dict` in percent: the metrics of a result row."""
        pct = lambda xs: [None if x is None else 100 * x for x in xs]  # noqa: E731
        d = self.as_dict()
        return {
            **{k: 100 * d[k] for k in ("miou", "aacc", "macc")},
            "iou": pct(d["iou"]),
            "acc": pct(d["acc"]),
        }


def metrics_from_confusion(cm: torch.Tensor) -> Metrics:
    """Metrics from a ``[C, C]`` confusion matrix (rows = ground truth)."""
    cm = cm.double().cpu()
    tp = cm.diag()
    gt = cm.sum(1)
    pred = cm.sum(0)
    union = gt + pred - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, float("nan")))
    total = cm.sum()
    return Metrics(
        miou=float(iou.nanmean()) if (union > 0).any() else float("nan"),
        aacc=float(tp.sum() / total) if total > 0 else float("nan"),
        macc=float(acc.nanmean()) if (gt > 0).any() else float("nan"),
        iou=iou.tolist(),
        acc=acc.tolist(),
    )


class ConfusionMeter:
    """Accumulates a confusion matrix on the predictions' device; one host sync in :meth:`compute`.

    Labels outside ``0..C-1`` (and not ``ignore_index``) are counted on the device and reported by
    :meth:`compute` with the smallest and largest such label, so :meth:`update` never waits for the
    device.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.counts: torch.Tensor | None = None
        self._bad_lo: torch.Tensor | None = None  # smallest and largest label outside the range
        self._bad_hi: torch.Tensor | None = None

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        c, ignore = self.num_classes, self.ignore_index
        counts = confusion_counts(pred, target, c, ignore)
        target = target.reshape(-1).long()
        bad = _outside(target, c, ignore)
        big = torch.iinfo(torch.long).max
        lo, hi = torch.where(bad, target, big).amin(), torch.where(bad, target, -big).amax()
        if self.counts is None:
            self.counts, self._bad_lo, self._bad_hi = counts, lo, hi
        else:
            self.counts = self.counts + counts
            self._bad_lo, self._bad_hi = torch.minimum(self._bad_lo, lo), torch.maximum(self._bad_hi, hi)

    @property
    def cm(self) -> torch.Tensor | None:
        if self.counts is None:
            return None
        return self.counts[:-1].reshape(self.num_classes, self.num_classes)

    def compute(self) -> Metrics:
        if self.counts is None:
            raise ValueError("no predictions were added")
        counts = self.counts.cpu()
        if counts[-1] > 0:
            lo, hi = int(self._bad_lo), int(self._bad_hi)
            raise ValueError(
                f"{int(counts[-1])} labels (from {lo} to {hi}) are outside 0..{self.num_classes - 1} and "
                f"not ignore_index={self.ignore_index}"
            )
        return metrics_from_confusion(counts[:-1].reshape(self.num_classes, self.num_classes))
