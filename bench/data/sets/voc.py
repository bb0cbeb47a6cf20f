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
from bench.errors import DataError

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

# Training lists of the augmented set, in the order they are looked for:
#   train_aug.txt  DeepLab / CIRKD: the 10,582 ids, labels in SegmentationClassAug;
#   aug.txt        mmseg's tools/dataset_converters/voc_aug.py: the 9,118 SBD ids that are in neither
#                  train.txt nor val.txt; mmseg's pascal_voc12_aug config trains on train.txt (labels
#                  in SegmentationClass) + aug.txt (labels in SegmentationClassAug), and so does this;
#   trainaug.txt   the same converter's (train + SBD) − val list, used when aug.txt is absent.
AUG_LIST, MMSEG_AUG_LIST, MMSEG_TRAINAUG_LIST = "train_aug.txt", "aug.txt", "trainaug.txt"


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
  <root>/ImageSets/Segmentation/train_aug.txt   the 10,582 training ids (DeepLab), or mmseg's
                                                aug.txt (read with train.txt, as mmseg does)
  (<root> is VOCdevkit/VOC2012; without SBD pass dataset.aug=false)"""
    source = (
        "VOC2012: http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar; SBD "
        "augmented labels: http://home.bharathh.info/pubs/codes/SBD/download.html converted into "
        "SegmentationClassAug/ + aug.txt by mmsegmentation's tools/dataset_converters/voc_aug.py (or the "
        "DeepLab SegmentationClassAug.zip with its train_aug.txt)"
    )

    classes = CLASS_NAMES  # colours: VOC's own bit-interleaved colour map, the default

    marker = "JPEGImages"
    overlap_hint = "remove the val.txt ids from the training list"

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
            if not aug_labels.is_dir() or not any(
                (sets / n).is_file() for n in (AUG_LIST, MMSEG_AUG_LIST, MMSEG_TRAINAUG_LIST)
            ):
                raise self.layout_error(
                    f"dataset.aug=true needs {aug_labels} and {sets / AUG_LIST} (or mmseg's "
                    f"{MMSEG_AUG_LIST}) from SBD; pass dataset.aug=false to train on the 1,464 VOC train "
                    "images only"
                )
            if (sets / AUG_LIST).is_file():
                entries = [(i, (aug_labels, labels)) for i in _read_ids(sets / AUG_LIST)]
            elif (sets / MMSEG_AUG_LIST).is_file():  # mmseg: train.txt + aug.txt
                self.require(sets / "train.txt")
                entries = [(i, (labels, aug_labels)) for i in _read_ids(sets / "train.txt")]
                entries += [(i, (aug_labels, labels)) for i in _read_ids(sets / MMSEG_AUG_LIST)]
            else:
                entries = [(i, (aug_labels, labels)) for i in _read_ids(sets / MMSEG_TRAINAUG_LIST)]
        else:
            self.require(sets / f"{split}.txt", images, labels)
            entries = [(i, (labels,)) for i in _read_ids(sets / f"{split}.txt")]
        pairs, seen = [], set()
        for id_, folders in entries:
            if id_ in seen:  # an id in both lists is one image
                continue
            seen.add(id_)
            image = images / f"{id_}.jpg"
            label = next((f / f"{id_}.png" for f in folders if (f / f"{id_}.png").is_file()), None)
            if label is None or not image.is_file():
                missing = image if label is not None else folders[0] / f"{id_}.png"
                raise self.layout_error(f"'{id_}' is listed for {split} but {missing} is missing")
            pairs.append((image, label))
        return pairs


def _read_ids(path: Path) -> list[str]:
    """Image ids of a list file; lines are ids or DeepLab-style "/JPEGImages/<id>.jpg /<label>.png"."""
    ids = [Path(line.split()[0]).stem for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"list file {path} is empty; it should list one image id per line")
    return ids
