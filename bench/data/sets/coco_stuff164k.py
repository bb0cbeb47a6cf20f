"""COCO-Stuff-164K in the layout mmsegmentation's converter writes
(``tools/dataset_converters/coco_stuff164k.py``): 118,287 train / 5,000 val images (COCO 2017), 171
classes (80 things + 91 stuff).

The converter maps COCO-Stuff's 182 label ids to train ids 0..170 and everything unlabelled to 255
and writes them as ``<image id>_labelTrainIds.png`` next to the original ``<image id>.png``; these
train-id maps are read here (no ``reduce_zero_label``), as mmseg's ``COCOStuffDataset`` does (CIRKD's
and Af-DCD's COCO-Stuff-164K loaders read the same 171 classes). Class names and palette are mmseg's.
"""

from __future__ import annotations

from pathlib import Path

from bench.data import DATASETS
from bench.data.files import FileDataset

CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
    "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv",
    "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard",
    "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard",
    "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other",
    "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit",
    "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves", "light", "mat",
    "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow",
    "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river", "road",
    "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other",
    "towel", "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel",
    "wall-stone", "wall-tile", "wall-wood", "water-other", "waterdrops", "window-blind", "window-other",
    "wood",
)  # fmt: skip

PALETTE = (
    (0, 192, 64), (0, 192, 64), (0, 64, 96), (128, 192, 192), (0, 64, 64), (0, 192, 224), (0, 192, 192),
    (128, 192, 64), (0, 192, 96), (128, 192, 64), (128, 32, 192), (0, 0, 224), (0, 0, 64),
    (0, 160, 192), (128, 0, 96), (128, 0, 192), (0, 32, 192), (128, 128, 224), (0, 0, 192),
    (128, 160, 192), (128, 128, 0), (128, 0, 32), (128, 32, 0), (128, 0, 128), (64, 128, 32),
    (0, 160, 0), (0, 0, 0), (192, 128, 160), (0, 32, 0), (0, 128, 128), (64, 128, 160), (128, 160, 0),
    (0, 128, 0), (192, 128, 32), (128, 96, 128), (0, 0, 128), (64, 0, 32), (0, 224, 128), (128, 0, 0),
    (192, 0, 160), (0, 96, 128), (128, 128, 128), (64, 0, 160), (128, 224, 128), (128, 128, 64),
    (192, 0, 32), (128, 96, 0), (128, 0, 192), (0, 128, 32), (64, 224, 0), (0, 0, 64), (128, 128, 160),
    (64, 96, 0), (0, 128, 192), (0, 128, 160), (192, 224, 0), (0, 128, 64), (128, 128, 32),
    (192, 32, 128), (0, 64, 192), (0, 0, 32), (64, 160, 128), (128, 64, 64), (128, 0, 160),
    (64, 32, 128), (128, 192, 192), (0, 0, 160), (192, 160, 128), (128, 192, 0), (128, 0, 96),
    (192, 32, 0), (128, 64, 128), (64, 128, 96), (64, 160, 0), (0, 64, 0), (192, 128, 224), (64, 32, 0),
    (0, 192, 128), (64, 128, 224), (192, 160, 0), (0, 192, 0), (192, 128, 96), (192, 96, 128),
    (0, 64, 128), (64, 0, 96), (64, 224, 128), (128, 64, 0), (192, 0, 224), (64, 96, 128),
    (128, 192, 128), (64, 0, 224), (192, 224, 128), (128, 192, 64), (192, 0, 96), (192, 96, 0),
    (128, 64, 192), (0, 128, 96), (0, 224, 0), (64, 64, 64), (128, 128, 224), (0, 96, 0),
    (64, 192, 192), (0, 128, 224), (128, 224, 0), (64, 192, 64), (128, 128, 96), (128, 32, 128),
    (64, 0, 192), (0, 64, 96), (0, 160, 128), (192, 0, 64), (128, 64, 224), (0, 32, 128),
    (192, 128, 192), (0, 64, 224), (128, 160, 128), (192, 128, 0), (128, 64, 32), (128, 32, 64),
    (192, 0, 128), (64, 192, 32), (0, 160, 64), (64, 0, 0), (192, 192, 160), (0, 32, 64),
    (64, 128, 128), (64, 192, 160), (128, 160, 64), (64, 128, 0), (192, 192, 32), (128, 96, 192),
    (64, 0, 128), (64, 64, 32), (0, 224, 192), (192, 0, 0), (192, 64, 160), (0, 96, 192),
    (192, 128, 128), (64, 64, 160), (128, 224, 192), (192, 128, 64), (192, 64, 32), (128, 96, 64),
    (192, 0, 192), (0, 192, 32), (64, 224, 64), (64, 0, 64), (128, 192, 160), (64, 96, 64),
    (64, 128, 192), (0, 192, 160), (192, 224, 64), (64, 128, 64), (128, 192, 32), (192, 32, 192),
    (64, 64, 192), (0, 64, 32), (64, 160, 192), (192, 64, 64), (128, 64, 160), (64, 32, 192),
    (192, 192, 192), (0, 64, 160), (192, 160, 192), (192, 192, 0), (128, 64, 96), (192, 32, 64),
    (192, 64, 128), (64, 192, 96), (64, 160, 64), (64, 64, 0),
)  # fmt: skip

SUBSETS = {"train": "train2017", "val": "val2017"}
SUFFIX = "_labelTrainIds.png"


@DATASETS.register("coco_stuff164k")
class COCOStuff164k(FileDataset):
    folder = "coco_stuff164k"
    layout = """  <root>/images/train2017/<id>.jpg  <root>/annotations/train2017/<id>_labelTrainIds.png
  <root>/images/val2017/<id>.jpg    <root>/annotations/val2017/<id>_labelTrainIds.png
  (<root> is coco_stuff164k; train ids 0..170, 255 = unlabelled, as mmseg's converter writes them)"""
    source = (
        "http://images.cocodataset.org/zips/{train2017,val2017}.zip and "
        "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip "
        "(https://github.com/nightrome/cocostuff), then mmsegmentation's "
        "tools/dataset_converters/coco_stuff164k.py"
    )

    classes = CLASS_NAMES
    colours = PALETTE
    marker = "annotations"

    def official_size(self, split: str) -> int | None:
        return {"train": 118287, "val": 5000}.get(split)

    def list_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        images, labels = root / "images" / SUBSETS[split], root / "annotations" / SUBSETS[split]
        self.require(images, labels)
        pairs = []
        for image in sorted(images.glob("*.jpg")):
            label = labels / f"{image.stem}{SUFFIX}"
            if not label.is_file():
                raise self.layout_error(
                    f"image {image} has no {label.name} (run mmsegmentation's coco_stuff164k converter)"
                )
            pairs.append((image, label))
        return pairs
