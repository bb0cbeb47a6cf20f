"""The dataset interface every registered dataset implements."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.utils.data import Dataset

from bench.config.schema import DatasetConfig

Sample = tuple[torch.Tensor, torch.Tensor]  # image uint8 [3, H, W], label int64 [H, W]


class SegmentationDataset(Dataset):
    """An official split of a segmentation dataset.

    ``__getitem__`` returns the image as uint8 ``[3, H, W]`` (normalisation happens in the model, on
    the device) and the label as int64 ``[H, W]`` already mapped to training ids, with
    ``cfg.ignore_index`` for void pixels (and ``reduce_zero_label`` applied when configured).
    """

    config_class: ClassVar[type[DatasetConfig]] = DatasetConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")

    def __init__(self, cfg: DatasetConfig, split: str) -> None:
        self.cfg = cfg
        self.split = split

    @classmethod
    def check_config(cls, cfg: DatasetConfig) -> None:
        """Raise ConfigError for inconsistent values; called when a run config is validated."""

    @property
    def class_names(self) -> list[str]:
        """Display names of the classes, in training-id order."""
        return [f"class_{i}" for i in range(self.cfg.num_classes)]

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        """An RGB colour per class for visualisations."""
        return default_palette(self.cfg.num_classes)

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError


def reduce_zero_label(label: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """ADE20K convention: label 0 ("other") → ignore, every other label k → k − 1."""
    out = label.long() - 1
    out[(label == 0) | (label == ignore_index)] = ignore_index
    return out


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """The PASCAL VOC bit-interleaving palette, which gives n distinct colours."""
    palette = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append((r, g, b))
    return palette
