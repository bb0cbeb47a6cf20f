"""Official splits plus the tuning hold-out carved from the training split.

Tuning never sees the official validation split: trials train on ``tune_train`` (train minus the
hold-out) and are scored on ``tune_holdout``. The hold-out is a fixed, seeded subset of the training
images (``dataset.holdout_size``, ``dataset.holdout_seed``), independent of the run seed, so every
trial and every method is scored on the same images.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from bench.config.schema import DatasetConfig
from bench.errors import ConfigError

SPLITS = ("train", "val", "tune_train", "tune_holdout")


def holdout_indices(n: int, size: float, seed: int) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (kept, hold-out) index lists; ``size`` is a fraction or a count."""
    count = round(size * n) if 0 < size < 1 else int(size)
    if not 1 <= count < n:
        raise ConfigError(
            f"dataset.holdout_size={size} gives {count} of {n} training images; it must leave at "
            "least one image on each side (a fraction in (0, 1) or a count)"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(perm[count:]), sorted(perm[:count])


def build_split(cfg: DatasetConfig, split: str) -> Dataset:
    """The dataset for ``split`` (one of :data:`SPLITS`)."""
    from bench.data.registry import DATASETS

    cls = DATASETS.get(cfg.name)
    if split in ("train", "val"):
        return cls(cfg, split)
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    base = cls(cfg, "train")
    kept, held = holdout_indices(len(base), cfg.holdout_size, cfg.holdout_seed)
    subset = Subset(base, kept if split == "tune_train" else held)
    subset.class_names = base.class_names  # type: ignore[attr-defined]
    subset.palette = base.palette  # type: ignore[attr-defined]
    return subset
