"""A custom dataset in a generic layout: ``images/<split>/<stem>.{jpg,png}`` + ``labels/<split>/<stem>.png``.

Labels are single-channel or palette PNGs holding class indices (``ignore_index`` for void);
``reduce_zero_label`` applies when set.
"""

from __future__ import annotations

from pathlib import Path

from bench.data import DATASETS
from bench.data.files import FileDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@DATASETS.register("folder")
class FolderDataset(FileDataset):
    folder = "folder"
    layout = """  <root>/images/train/<stem>.jpg|png    <root>/labels/train/<stem>.png
  <root>/images/val/<stem>.jpg|png      <root>/labels/val/<stem>.png
  (labels: single-channel or palette PNGs of class indices, ignore_index for void)"""

    def list_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        images, labels = root / "images" / split, root / "labels" / split
        self.require(images, labels)
        pairs = []
        for image in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            label = labels / f"{image.stem}.png"
            if not label.is_file():
                raise self.layout_error(f"image {image} has no label {label}")
            pairs.append((image, label))
        return pairs
