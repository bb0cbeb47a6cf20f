"""The real datasets on tiny fixtures in their official layouts: splits, label mappings, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from bench.config.compose import load_config
from bench.data import DATASETS, build_split
from bench.errors import ConfigError, DataError

from .layouts import RAWS, WRITERS, blocks, ungrey, voc_palette_png, write_camvid, write_voc

DATASET_NAMES = sorted(WRITERS)
PARTIAL = ["dataset.allow_partial=true"]  # the fixtures hold a few images per split

# cityscapesScripts helpers/labels.py: labelId → trainId of the 19 evaluated classes, written out
# independently of bench.data.sets.cityscapes; every other id is ignored.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def _cfg(name: str, root, *overrides: str):
    return load_config([f"dataset={name}", f"dataset.root={root}", *PARTIAL, *overrides]).dataset


@pytest.fixture
def root(tmp_path, request):
    WRITERS[request.param](tmp_path)
    return tmp_path


@pytest.mark.parametrize("root", DATASET_NAMES, indirect=True)
def test_splits_class_names_and_palette(root, request):
    name = request.node.callspec.params["root"]
    counts = {
        "cityscapes": (3, 2),
        "ade20k": (3, 2),
        "voc": (3, 2),
        "camvid": (3, 2),
        "coco_stuff164k": (3, 2),
    }[name]
    cfg = _cfg(name, root)
    for split, expected in zip(("train", "val"), counts, strict=True):
        ds = build_split(cfg, split)
        assert len(ds) == expected
        image, label = ds[0]
        assert image.dtype == torch.uint8 and image.shape[0] == 3 and label.dtype == torch.int64
        assert image.shape[1:] == label.shape
        valid = label[label != 255]
        assert ((valid >= 0) & (valid < cfg.num_classes)).all()
    assert len(ds.class_names) == len(ds.palette) == cfg.num_classes
    # One colour per class; mmseg's official palettes repeat some: ADE20K one (road and skyscraper),
    # COCO-Stuff nine (e.g. person and bicycle share (0, 192, 64)).
    assert len(set(ds.palette)) == cfg.num_classes - {"ade20k": 1, "coco_stuff164k": 9}.get(name, 0)
    assert all(0 <= c <= 255 for rgb in ds.palette for c in rgb)


def _mapped(name: str, root, raw_values: np.ndarray, *overrides: str) -> np.ndarray:
    """What the dataset yields for a label image of the given raw values (one row)."""
    ds = build_split(_cfg(name, root, *overrides), "val")
    image_path, label_path = ds.pairs[0]
    h, w = raw_values.shape
    Image.new("RGB", (w, h)).save(image_path)
    Image.fromarray(raw_values.astype(np.uint8)).save(label_path)
    return ds[0][1].numpy()


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    WRITERS["cityscapes"](tmp_path)
    raw = np.arange(256, dtype=np.uint8)[None]
    got = _mapped("cityscapes", tmp_path, raw)[0]
    expected = [CITYSCAPES_TRAIN_IDS.get(i, 255) for i in range(256)]
    assert got.tolist() == expected
    assert got[7] == 0 and got[0] == 255 and got[33] == 18 and got[9] == 255  # parking is ignored
    assert build_split(_cfg("cityscapes", tmp_path), "train").class_names[:2] == ["road", "sidewalk"]


def test_cityscapes_reads_label_ids_not_the_decoys(tmp_path):
    WRITERS["cityscapes"](tmp_path)
    ds = build_split(_cfg("cityscapes", tmp_path), "train")
    assert all(label.name.endswith("_gtFine_labelIds.png") for _, label in ds.pairs)
    assert [p[0].parent.name for p in ds.pairs] == ["aachen", "aachen", "bochum"]  # sorted by city


def test_cityscapes_honours_another_ignore_index(tmp_path):
    WRITERS["cityscapes"](tmp_path)
    got = _mapped("cityscapes", tmp_path, np.array([[0, 7, 9]]), "dataset.ignore_index=-1")
    assert got.tolist() == [[-1, 0, -1]]


def test_ade20k_reduces_the_zero_label(tmp_path):
    WRITERS["ade20k"](tmp_path)
    got = _mapped("ade20k", tmp_path, np.array([[0, 1, 2, 150]]))
    assert got.tolist() == [[255, 0, 1, 149]]


def test_ade20k_refuses_a_config_without_reduce_zero_label(tmp_path):
    with pytest.raises(ConfigError, match="reduce_zero_label"):
        load_config(["dataset=ade20k", "dataset.reduce_zero_label=false"])


def test_voc_palette_pngs_decode_to_indices_with_255_kept(tmp_path):
    write_voc(tmp_path)
    ds = build_split(_cfg("voc", tmp_path), "val")
    label_path = ds.pairs[0][1]
    raw = np.array([[0, 1, 15, 20, 255]], dtype=np.uint8)
    Image.new("RGB", (5, 1)).save(ds.pairs[0][0])
    voc_palette_png(raw, label_path)
    with Image.open(label_path) as im:
        assert im.mode == "P" and im.convert("RGB").getpixel((2, 0)) == (192, 128, 128)  # person's colour
    assert ds[0][1].tolist() == [[0, 1, 15, 20, 255]]
    assert ds.class_names[15] == "person" and ds.palette[15] == (192, 128, 128)


def test_voc_augmented_and_plain_training_sets(tmp_path):
    write_voc(tmp_path)
    aug = build_split(_cfg("voc", tmp_path), "train")
    labels = {p[0].stem: p[1].parent.name for p in aug.pairs}
    # train_aug ids in DeepLab's "path path" format; an id without an SBD label falls back.
    assert labels == {
        "2007_000032": "SegmentationClassAug",
        "2007_000039": "SegmentationClass",
        "2008_000002": "SegmentationClassAug",
    }
    plain = build_split(_cfg("voc", tmp_path, "dataset.aug=false"), "train")
    assert [p[0].stem for p in plain.pairs] == ["2007_000032", "2007_000039"]
    assert {p[1].parent.name for p in plain.pairs} == {"SegmentationClass"}


def test_voc_without_sbd_says_how_to_train_without_it(tmp_path):
    write_voc(tmp_path, aug=False)
    with pytest.raises(DataError, match=r"dataset.aug=false") as err:
        build_split(_cfg("voc", tmp_path), "train")
    assert "SegmentationClassAug" in str(err.value)
    assert len(build_split(_cfg("voc", tmp_path, "dataset.aug=false"), "train")) == 2


def test_voc_reads_mmseg_lists_as_mmseg_does(tmp_path):
    # mmseg's voc_aug.py writes aug.txt = SBD ids in neither train.txt nor val.txt, and trainaug.txt =
    # (train + SBD) − val; its pascal_voc12_aug config trains on train.txt + aug.txt. Before, aug.txt was
    # read alone: every train.txt image was missing and the run went on with a warning.
    write_voc(tmp_path)
    sets = tmp_path / "ImageSets" / "Segmentation"
    (sets / "train_aug.txt").unlink()
    (sets / "aug.txt").write_text("2008_000002\n")
    (sets / "trainaug.txt").write_text("2007_000032\n2007_000039\n2008_000002\n")
    ds = build_split(_cfg("voc", tmp_path), "train")
    labels = {p[0].stem: p[1].parent.name for p in ds.pairs}
    assert labels == {  # train.txt ids from SegmentationClass, aug.txt ids from SegmentationClassAug
        "2007_000032": "SegmentationClass",
        "2007_000039": "SegmentationClass",
        "2008_000002": "SegmentationClassAug",
    }
    (sets / "aug.txt").unlink()  # trainaug.txt alone: the same three images
    assert sorted(p[0].stem for p in build_split(_cfg("voc", tmp_path), "train").pairs) == sorted(labels)


def test_camvid_void_is_ignored_and_sets_are_configurable(tmp_path):
    write_camvid(tmp_path)
    got = _mapped("camvid", tmp_path, np.array([[0, 3, 10, 11]]))
    assert got.tolist() == [[0, 3, 10, 255]]
    cfg = _cfg("camvid", tmp_path, "dataset.train_sets=[train,val]", "dataset.val_set=test")
    assert len(build_split(cfg, "train")) == 5 and len(build_split(cfg, "val")) == 1
    with pytest.raises(ConfigError, match="valid sets"):
        load_config(["dataset=camvid", "dataset.val_set=training"])


@pytest.mark.parametrize("root", DATASET_NAMES, indirect=True)
def test_fixture_labels_match_their_images(root, request):
    # Each fixture image encodes its raw label as grey levels: decoding through the dataset must give
    # the same training ids from both sides (checks pairing and decoding of image and label files).
    name = request.node.callspec.params["root"]
    ds = build_split(_cfg(name, root), "train")
    for i in range(len(ds)):
        image, label = ds[i]
        raw = ungrey(image[0].numpy(), RAWS[name])
        expected = torch.from_numpy(ds.map_label(raw.astype(np.uint8)).astype(np.int64))
        if ds.cfg.reduce_zero_label:
            expected = torch.where(expected == 0, 255, expected - 1)
        assert torch.equal(label, expected)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_missing_root_names_the_layout_and_the_source(tmp_path, name):
    with pytest.raises(DataError) as err:
        build_split(_cfg(name, tmp_path / "nowhere"), "train")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and "Expected layout" in message and "Get the data" in message


@pytest.mark.parametrize(
    ("name", "remove", "named"),
    [
        ("cityscapes", "gtFine", "gtFine/train"),
        ("ade20k", "annotations/training", "annotations/training"),
        ("voc", "JPEGImages/2007_000032.jpg", "2007_000032.jpg"),
        ("camvid", "trainannot", "trainannot"),
    ],
)
def test_incomplete_root_names_what_is_missing(tmp_path, name, remove, named):
    WRITERS[name](tmp_path)
    target = tmp_path / remove
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(DataError, match=named) as err:
        build_split(_cfg(name, tmp_path), "train")
    assert "Expected layout" in str(err.value)


def test_image_without_label_is_named(tmp_path):
    WRITERS["cityscapes"](tmp_path)
    label = next((tmp_path / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))
    label.unlink()
    with pytest.raises(DataError, match=label.name):
        build_split(_cfg("cityscapes", tmp_path), "val")


def test_root_from_the_environment(tmp_path, monkeypatch):
    write_voc(tmp_path / "VOCdevkit" / "VOC2012")
    monkeypatch.setenv("SEGKD_DATA_ROOT", str(tmp_path))
    assert len(build_split(load_config(["dataset=voc", *PARTIAL]).dataset, "val")) == 2
    monkeypatch.delenv("SEGKD_DATA_ROOT")
    with pytest.raises(DataError, match="SEGKD_DATA_ROOT"):
        build_split(load_config(["dataset=voc"]).dataset, "val")


def test_incomplete_copy_is_an_error_unless_partial_on_purpose(tmp_path, caplog):
    WRITERS["ade20k"](tmp_path)
    cfg = load_config(["dataset=ade20k", f"dataset.root={tmp_path}"]).dataset
    with pytest.raises(DataError, match=r"3 images .* official split has 20210.*dataset.allow_partial=true"):
        build_split(cfg, "train")
    build_split(_cfg("ade20k", tmp_path), "train")
    assert "official split has 20210" in caplog.text


def test_every_dataset_module_is_registered():
    assert set(DATASET_NAMES) <= set(DATASETS.names())


def test_blocks_cover_every_cityscapes_label_id():
    assert set(np.unique(blocks((48, 192), RAWS["cityscapes"], seed=0))) == set(range(34))
