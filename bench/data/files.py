"""File-backed datasets: root resolution, layout checks, and safe image/label decoding.

A subclass describes its official layout (:attr:`FileDataset.layout`, :attr:`FileDataset.source`),
lists the ``(image, label)`` file pairs of a split and maps raw label values to training ids. Decoding
happens in ``__getitem__`` (so in DataLoader workers); a corrupt file or an image/label pair of
different sizes raises :class:`~bench.errors.DataError` naming the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from bench.config.schema import DatasetConfig
from bench.data.base import Sample, SegmentationDataset, default_palette, reduce_zero_label
from bench.errors import ConfigError, DataError

DATA_ROOT_ENV = "SEGKD_DATA_ROOT"

log = logging.getLogger("bench")
_WARNED: set[str] = set()


class FileDataset(SegmentationDataset):
    """A dataset read from files under ``dataset.root``.

    Subclasses set :attr:`folder` (the dataset's folder name under ``$SEGKD_DATA_ROOT``),
    :attr:`layout` (the expected tree, shown in errors), :attr:`source` (where to get the data) and
    implement :meth:`list_pairs`; they may override :meth:`map_label`.
    """

    folder: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    source: ClassVar[str] = ""
    # The official classes in training-id order, their colours (None: the VOC colour map) and whether
    # the official labels need reduce_zero_label (ADE20K). Empty for datasets of any class count.
    classes: ClassVar[tuple[str, ...]] = ()
    colours: ClassVar[tuple[tuple[int, int, int], ...] | None] = None
    reduces_zero_label: ClassVar[bool] = False
    # Raw label value → training id; values not listed become ignore_index. None: labels are ids.
    label_map: ClassVar[Mapping[int, int] | None] = None
    # A path under the root every copy has; a root without it is searched one or two levels down.
    marker: ClassVar[str] = ""
    # How to fix a training split that overlaps the evaluation split.
    overlap_hint: ClassVar[str] = "check the split lists"

    def __init__(self, cfg: DatasetConfig, split: str, checks: bool = True) -> None:
        """Lists the split's files; ``checks`` also compares its size with the official one and, for
        ``train``, refuses images shared with the evaluation split (``make check-data`` runs them itself)."""
        self.check_config(cfg)
        super().__init__(cfg, split)
        self.lut = None if self.label_map is None else lookup_table(self.label_map, cfg.ignore_index)
        self.root = self.resolve_root(cfg)
        self.pairs = self.list_pairs(self.root, split)
        if not self.pairs:
            raise self.layout_error(f"no {split} images found under {self.root}")
        if checks:
            self.check_size()
            if split == "train":
                self.check_disjoint_from_val()

    def check_size(self) -> None:
        """A split whose size differs from the official one is an error unless ``dataset.allow_partial``."""
        cfg, split = self.cfg, self.split
        expected = self.official_size(split)
        if expected is not None and len(self.pairs) != expected:
            message = (
                f"{cfg.name} {split}: {len(self.pairs)} images under {self.root}, the official split has "
                f"{expected}"
            )
            if not cfg.allow_partial:
                raise DataError(
                    f"{message}; an incomplete copy or a wrong list file? Pass dataset.allow_partial=true "
                    "if the copy is a subset on purpose (results are then not comparable to the literature)"
                )
            if message not in _WARNED:  # once per process: every trial lists the split again
                _WARNED.add(message)
                log.warning("%s (dataset.allow_partial=true)", message)

    def check_disjoint_from_val(self) -> None:
        """Refuse a training split that shares images with the evaluation split, naming them."""
        try:
            val = {image.resolve() for image, _ in self.list_pairs(self.root, "val")}
        except DataError:  # no evaluation split in this copy: nothing can overlap
            return
        shared = sorted({image.stem for image, _ in self.pairs if image.resolve() in val})
        if shared:
            shown = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
            raise DataError(
                f"{self.cfg.name}: {len(shared)} training image(s) are also in the evaluation split "
                f"({shown}); the reported split must not overlap training: {self.overlap_hint}"
            )

    # -------------------------------------------------------------- to override
    def list_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:  # pragma: no cover
        raise NotImplementedError

    def map_label(self, raw: np.ndarray) -> np.ndarray:
        """Raw label values → training ids (ignore → ``cfg.ignore_index``) through :attr:`label_map`."""
        return raw if self.lut is None else apply_table(raw, self.lut)

    @classmethod
    def check_config(cls, cfg: DatasetConfig) -> None:
        if cls.classes and (cfg.num_classes, cfg.reduce_zero_label) != (
            len(cls.classes),
            cls.reduces_zero_label,
        ):
            raise ConfigError(
                f"{cfg.name} needs dataset.num_classes={len(cls.classes)} and dataset.reduce_zero_label="
                f"{str(cls.reduces_zero_label).lower()}; got {cfg.num_classes} and "
                f"{str(cfg.reduce_zero_label).lower()}"
            )

    @property
    def class_names(self) -> list[str]:
        return list(self.classes) if self.classes else super().class_names

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return list(self.colours) if self.colours else default_palette(self.cfg.num_classes)

    def official_size(self, split: str) -> int | None:
        """The number of images the official ``split`` has (a warning when the copy differs)."""
        return None

    # -------------------------------------------------------------- shared
    @classmethod
    def resolve_root(cls, cfg: DatasetConfig) -> Path:
        """``dataset.root``, else ``$SEGKD_DATA_ROOT/<folder>``; an error naming the layout if absent."""
        if cfg.root:
            root = Path(cfg.root).expanduser()
        elif os.environ.get(DATA_ROOT_ENV) and cls.folder:
            root = Path(os.environ[DATA_ROOT_ENV]) / cls.folder
        else:
            raise cls.layout_error(
                f"dataset.root is not set; pass dataset.root=/path/to/{cls.folder or 'data'} or set "
                f"${DATA_ROOT_ENV} to the folder that contains '{cls.folder}'",
                cfg.name,
            )
        if not root.is_dir():
            via = f"${DATA_ROOT_ENV}/{cls.folder}" if not cfg.root else "dataset.root"
            raise cls.layout_error(
                f"dataset root {root} ({via}) does not exist; pass dataset.root=/path/to/"
                f"{cls.folder or 'data'} or set ${DATA_ROOT_ENV} to the folder that contains "
                f"'{cls.folder or 'data'}'",
                cfg.name,
            )
        if cls.marker and not (root / cls.marker).exists():
            below = sorted(p.parent for p in [*root.glob(f"*/{cls.marker}"), *root.glob(f"*/*/{cls.marker}")])
            if below:
                raise cls.layout_error(
                    f"dataset root {root} has no {cls.marker} but {below[0]} does: the root is a level too "
                    f"high; pass dataset.root={below[0]}",
                    cfg.name,
                )
            raise cls.layout_error(f"dataset root {root} has no {cls.marker}", cfg.name)
        return root

    @classmethod
    def layout_error(cls, problem: str, name: str | None = None) -> DataError:
        where = f"\nGet the data: {cls.source}" if cls.source else ""
        return DataError(
            f"{problem}.\nExpected layout of '{name or cls.folder}':\n{cls.layout.rstrip()}{where}"
        )

    def require(self, *paths: Path) -> None:
        """Fail with the layout if any of ``paths`` is missing."""
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise self.layout_error(f"missing {', '.join(missing)}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        image, _, label = self.load(index)
        return image, label

    def load(self, index: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
        """Image, raw label values and training-id label of one pair (decoded and size-checked)."""
        image_path, label_path = self.pairs[index]
        image = read_image(image_path)
        raw = read_label(label_path)
        if tuple(image.shape[-2:]) != raw.shape:
            raise DataError(
                f"image {image_path} is {tuple(image.shape[-2:])} but its label {label_path} "
                f"is {raw.shape} (height, width); the pair must have the same size"
            )
        label = torch.from_numpy(self.map_label(raw).astype(np.int64, copy=False))
        if self.cfg.reduce_zero_label:
            label = reduce_zero_label(label, self.cfg.ignore_index)
        return image, raw, label


def lookup_table(table: Mapping[int, int], ignore_index: int) -> np.ndarray:
    """A 256-entry raw value → training id table; values absent from ``table`` → ``ignore_index``."""
    lut = np.full(256, ignore_index, dtype=np.int64)
    for raw, train_id in table.items():
        lut[raw] = train_id
    return lut


def apply_table(raw: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[raw]``; 16-bit values beyond the table map like 255 (to ignore)."""
    return lut[raw if raw.dtype == np.uint8 else np.clip(raw, 0, len(lut) - 1)]


def read_image(path: Path) -> torch.Tensor:
    """RGB uint8 ``[3, H, W]``, a view of channels-last memory (resizing it is several times faster)."""
    try:
        with Image.open(path) as im:
            array = np.array(im if im.mode == "RGB" else im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None
    return torch.from_numpy(array).permute(2, 0, 1)


def read_label(path: Path) -> np.ndarray:
    """A label PNG as an ``[H, W]`` array of raw values; palette PNGs give their indices."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise DataError(
                    f"label {path} has mode {im.mode}; expected a single-channel or palette "
                    "PNG of class indices"
                )
            return np.array(im)
    except DataError:
        raise
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read label {path}: {e}") from None
