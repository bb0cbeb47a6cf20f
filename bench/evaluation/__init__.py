"""Evaluation: metrics, inference protocols and :func:`evaluate` over a dataset split."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from bench.config.schema import EvalConfig
from bench.data.pipeline import make_loader
from bench.evaluation.inference import predict, slide_inference
from bench.evaluation.metrics import (
    ConfusionMeter,
    Metrics,
    confusion_matrix,
    metrics_from_confusion,
)
from bench.models.segmenter import Segmenter


def eval_loader(
    dataset: Dataset, cfg: EvalConfig, num_workers: int = 0, pin_memory: bool = False
) -> DataLoader:
    """The loader :func:`evaluate` iterates (build it once to reuse workers across validations).

    It yields single images (decoded in its workers); :func:`evaluate` batches consecutive images of
    the same size up to ``eval.batch_size``, so datasets of mixed image sizes batch too, unpadded.
    """
    if cfg.max_images and cfg.max_images < len(dataset):
        dataset = Subset(dataset, range(cfg.max_images))
    return make_loader(dataset, batch_size=1, num_workers=num_workers, pin_memory=pin_memory)


def same_size_batches(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Concatenate consecutive loader batches into batches of up to ``batch_size`` images of one size."""
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    count = 0
    for x, y in batches:
        if images and (x.shape[1:] != images[0].shape[1:] or y.shape[1:] != labels[0].shape[1:]):
            yield torch.cat(images), torch.cat(labels)
            images, labels, count = [], [], 0
        images.append(x)
        labels.append(y)
        count += x.shape[0]
        if count >= batch_size:
            yield torch.cat(images), torch.cat(labels)
            images, labels, count = [], [], 0
    if images:
        yield torch.cat(images), torch.cat(labels)


def evaluate(
    model: Segmenter,
    data: Dataset | DataLoader,
    cfg: EvalConfig,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    precision: torch.dtype | None = None,
) -> Metrics:
    """Score ``model`` on a dataset (or a loader from :func:`eval_loader`) under protocol ``cfg``.

    Images are scored ``cfg.batch_size`` at a time (consecutive images of one size); predictions
    and the confusion matrix stay on the device until the end (one host sync per evaluation).
    The model is put in eval mode and restored to its previous mode afterwards.
    """
    loader = data if isinstance(data, DataLoader) else eval_loader(data, cfg)
    meter = ConfusionMeter(num_classes, ignore_index)
    was_training = model.training
    model.eval()
    try:
        for images, labels in same_size_batches(loader, max(cfg.batch_size, 1)):
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
                probs = predict(model, images, cfg)
            # max(1).indices: argmax(1)'s values (first maximum on ties), 15× faster on CPU for NCHW
            meter.update(probs.max(1).indices, labels)
    finally:
        model.train(was_training)
    return meter.compute()


__all__ = [
    "ConfusionMeter",
    "Metrics",
    "confusion_matrix",
    "eval_loader",
    "evaluate",
    "metrics_from_confusion",
    "predict",
    "same_size_batches",
    "slide_inference",
]
