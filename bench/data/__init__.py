"""Datasets: one registry, official splits, the tuning hold-out and the training pipeline.

Registering a dataset means one module in this package that decorates a
:class:`~bench.data.base.SegmentationDataset` subclass with ``@DATASETS.register("name")`` and one
``conf/dataset/<name>.yaml``.
"""

from bench.data.base import SegmentationDataset
from bench.data.registry import DATASETS
from bench.data.splits import build_split, holdout_indices

__all__ = ["DATASETS", "SegmentationDataset", "build_split", "holdout_indices"]
