"""Cityscapes, fine annotations (Cordts et al., CVPR 2016): 2,975 train / 500 val images, 19 classes.

Reads the official download as unzipped (``leftImg8bit_trainvaltest.zip`` + ``gtFine_trainvaltest.zip``)
and maps the ``*_gtFine_labelIds.png`` files to the 19 training ids of cityscapesScripts' ``labels.py``
on the fly; every other id (void, parking, rail track, guard rail, bridge, tunnel, polegroup, caravan,
trailer) becomes ``ignore_index``. No ``createTrainIdLabelImgs`` step is needed.
"""

from __future__ import annotations

from pathlib import Path

from bench.data import DATASETS
from bench.data.files import FileDataset

# (name, labelId, RGB colour) of the 19 evaluated classes in trainId order (cityscapesScripts
# helpers/labels.py).
CLASSES: tuple[tuple[str, int, tuple[int, int, int]], ...] = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)),
    ("traffic sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)
LABEL_ID_TO_TRAIN_ID = {label_id: train_id for train_id, (_, label_id, _) in enumerate(CLASSES)}

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


@DATASETS.register("cityscapes")
class Cityscapes(FileDataset):
    folder = "cityscapes"
    layout = """  <root>/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
  <root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
  (labelIds as distributed; the 19 trainIds are derived on the fly, every other id is ignored)"""
    source = (
        "https://www.cityscapes-dataset.com/downloads/ (free registration): leftImg8bit_trainvaltest.zip "
        "and gtFine_trainvaltest.zip, unzipped into the same folder"
    )

    classes = tuple(name for name, _, _ in CLASSES)
    colours = tuple(colour for _, _, colour in CLASSES)
    label_map = LABEL_ID_TO_TRAIN_ID
    marker = "leftImg8bit"

    def official_size(self, split: str) -> int | None:
        return {"train": 2975, "val": 500}.get(split)

    def list_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        images, labels = root / "leftImg8bit" / split, root / "gtFine" / split
        self.require(images, labels)
        pairs = []
        for image in sorted(images.glob(f"*/*{IMAGE_SUFFIX}")):
            stem = image.name[: -len(IMAGE_SUFFIX)]
            label = labels / image.parent.name / f"{stem}{LABEL_SUFFIX}"
            if not label.is_file():
                raise self.layout_error(f"image {image} has no label {label}")
            pairs.append((image, label))
        return pairs
