"""PASCAL VOC 2012 segmentation with the SBD-augmented training set: 10,582 train / 1,449 val images,
21 classes (background + 20 objects).

Validation always uses the official ``SegmentationClass`` palette PNGs (read as indices; 255 marks
object boundaries and void and is kept as ignore). Training uses the "train_aug" set, as DeepLab,
mmseg and CIRKD do: the ids listed in ``ImageSets/Segmentation/train_aug.txt`` (or mmseg's ``aug.txt``)
with their labels in ``SegmentationClassAug`` (single-channel PNGs converted from SBD), falling back to
``SegmentationClass`` for an id that has no augmented label. ``dataset.aug=false`` trains on the 1,464
official ``train.txt`` images instead, without SBD.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.config.schema import DatasetConfig
from bench.data import DATASETS
from bench.data.files import FileDataset

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

AUG_LISTS = ("train_aug.txt", "aug.txt")  # DeepLab / CIRKD name, mmseg's voc_aug.py name


@dataclass
class VOCConfig(DatasetConfig):
    name: str = "voc"
    num_classes: int = 21
    # Train on the 10,582-image SBD-augmented set (true) or the 1,464 official train images (false).
    aug: bool = True


@DATASETS.register("voc")
class PascalVOC(FileDataset):
    config_class = VOCConfig
    folder = "VOCdevkit/VOC2012"
    layout = """  <root>/JPEGImages/<id>.jpg
  <root>/SegmentationClass/<id>.png             palette PNGs (indices; 255 = boundary/void, ignored)
  <root>/ImageSets/Segmentation/{train,val}.txt
  and, for the augmented training set (dataset.aug=true, the default):
  <root>/SegmentationClassAug/<id>.png          single-channel PNGs converted from SBD
  <root>/ImageSets/Segmentation/train_aug.txt   the 10,582 training ids (or mmseg's aug.txt)
  (<root> is VOCdevkit/VOC2012; without SBD pass dataset.aug=false)"""
    source = (
        "VOC2012: http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar; SBD "
        "augmented labels: http://home.bharathh.info/pubs/codes/SBD/download.html converted into "
        "SegmentationClassAug/ + aug.txt by mmsegmentation's tools/dataset_converters/voc_aug.py (or the "
        "DeepLab SegmentationClassAug.zip with its train_aug.txt)"
    )

    classes = CLASS_NAMES  # colours: VOC's own bit-interleaved colour map, the default

    def official_size(self, split: str) -> int | None:
        if split == "train":
            return 10582 if self.cfg.aug else 1464
        return 1449

    def list_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        sets = root / "ImageSets" / "Segmentation"
        images, labels, aug_labels = (
            root / "JPEGImages",
            root / "SegmentationClass",
            root / "SegmentationClassAug",
        )
        if split == "train" and self.cfg.aug:
            lists = [sets / name for name in AUG_LISTS if (sets / name).is_file()]
            if not lists or not aug_labels.is_dir():
                raise self.layout_error(
                    f"dataset.aug=true needs {aug_labels} and {sets / AUG_LISTS[0]} (or {AUG_LISTS[1]}) from "
                    "SBD; pass dataset.aug=false to train on the 1,464 VOC train images only"
                )
            ids, folders = _read_ids(lists[0]), (aug_labels, labels)
        else:
            self.require(sets / f"{split}.txt", images, labels)
            ids, folders = _read_ids(sets / f"{split}.txt"), (labels,)
        pairs = []
        for id_ in ids:
            image = images / f"{id_}.jpg"
            label = next((f / f"{id_}.png" for f in folders if (f / f"{id_}.png").is_file()), None)
            if label is None or not image.is_file():
                missing = image if label is not None else folders[0] / f"{id_}.png"
                raise self.layout_error(f"'{id_}' is listed for {split} but {missing} is missing")
            pairs.append((image, label))
        return pairs


def _read_ids(path: Path) -> list[str]:
    """Image ids of a list file; lines are ids or DeepLab-style "/JPEGImages/<id>.jpg /<label>.png"."""
    ids = []
    for line in path.read_text().splitlines():
        if line.strip():
            ids.append(Path(line.split()[0]).stem)
    return ids
