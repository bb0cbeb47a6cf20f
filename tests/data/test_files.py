"""File-backed datasets (the generic `folder` layout): root, layout and file errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench.config.compose import load_config
from bench.data import build_split
from bench.engine.trainer import train_run
from bench.errors import DataError

from ..conftest import TINY_TRAIN


def _write_pair(root, split, stem, size=(32, 32), label_size=None, palette=False):
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(stem)) % 2**32)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
        root / "images" / split / f"{stem}.jpg"
    )
    label = rng.integers(0, 3, label_size or size, dtype=np.uint8)
    label[0, :] = 255
    im = Image.fromarray(label)
    if palette:
        im = im.convert("P")
        im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] * 85 + [0, 0, 0])
    im.save(root / "labels" / split / f"{stem}.png")


def _folder(root, *overrides):
    return load_config(
        [
            *TINY_TRAIN,
            "dataset=folder",
            "train=synthetic",
            "dataset.num_classes=3",
            f"dataset.root={root}",
            "dataset.holdout_size=1",
            *overrides,
        ]
    )


def test_folder_dataset_reads_pairs(tmp_path):
    for i in range(3):
        _write_pair(tmp_path, "train", f"a{i}", palette=i == 0)
    _write_pair(tmp_path, "val", "v0")
    ds = build_split(_folder(tmp_path).dataset, "train")
    assert len(ds) == 3
    image, label = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert set(label.unique().tolist()) <= {0, 1, 2, 255} and (label[0] == 255).all()


@pytest.mark.slow
def test_one_training_step_on_files(tmp_path):
    for i in range(4):
        _write_pair(tmp_path, "train", f"a{i}")
    _write_pair(tmp_path, "val", "v0")
    row = train_run(_folder(tmp_path, "train.iterations=2", f"output_dir={tmp_path / 'out'}"))
    assert 0 <= row["metrics"]["miou"] <= 100  # percent


def test_missing_root_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(DataError) as err:
        build_split(_folder(tmp_path / "nowhere").dataset, "train")
    assert str(tmp_path / "nowhere") in str(err.value) and "labels/train" in str(err.value)


def test_unset_root_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("SEGKD_DATA_ROOT", raising=False)
    cfg = load_config([*TINY_TRAIN, "dataset=folder", "train=synthetic", "dataset.num_classes=3"])
    with pytest.raises(DataError, match=r"dataset.root"):
        build_split(cfg.dataset, "train")


def test_corrupt_image_names_the_file(tmp_path):
    _write_pair(tmp_path, "train", "a0")
    bad = tmp_path / "images" / "train" / "a0.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=r"a0.jpg"):
        build_split(_folder(tmp_path).dataset, "train")[0]


def test_image_and_label_of_different_sizes_name_the_files(tmp_path):
    _write_pair(tmp_path, "train", "a0", size=(32, 32), label_size=(30, 32))
    with pytest.raises(DataError, match=r"a0.jpg.*a0.png.*same size"):
        build_split(_folder(tmp_path).dataset, "train")[0]


def test_rgb_label_is_refused(tmp_path):
    _write_pair(tmp_path, "train", "a0")
    Image.new("RGB", (32, 32)).save(tmp_path / "labels" / "train" / "a0.png")
    with pytest.raises(DataError, match="mode RGB"):
        build_split(_folder(tmp_path).dataset, "train")[0]
