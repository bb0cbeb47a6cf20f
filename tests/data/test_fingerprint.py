"""Data identity (issue 25 item 2): a split's fingerprint tells copies of the data apart, not places."""

import dataclasses
import functools
import shutil

import pytest

from bench.config.compose import load_config
from bench.data import build_split
from bench.data import fingerprint as fpm
from bench.data.fingerprint import fingerprint, split_fingerprint

from ..conftest import TINY, TINY_TRAIN
from .test_files import _write_pair

SPLITS = ("train", "val", "tune_train", "tune_holdout")


def copies(tmp):
    """Copy A (4 train, 2 val images), copy B = A with the val images copied into train (the issue's
    case), and A2 = A cloned to another path (the honest control)."""
    a = tmp / "a"
    for i in range(4):
        _write_pair(a, "train", f"t{i}")
    for i in range(2):
        _write_pair(a, "val", f"v{i}")
    b = tmp / "b"
    shutil.copytree(a, b)
    for kind, suffix in (("images", "jpg"), ("labels", "png")):
        for i in range(2):
            shutil.copy(b / kind / "val" / f"v{i}.{suffix}", b / kind / "train" / f"v{i}.{suffix}")
    a2 = tmp / "elsewhere" / "a"
    shutil.copytree(a, a2)
    return a, b, a2


FOLDER = ["dataset=folder", "train=synthetic", "dataset.num_classes=3", "dataset.holdout_size=1"]


@functools.cache
def _folder_config():
    return load_config([*TINY_TRAIN, *FOLDER]).dataset


def folder(root, **changes):
    """The folder dataset at ``root`` (3 classes, a one-image hold-out), composed once."""
    return dataclasses.replace(_folder_config(), root=str(root), **changes)


def test_fault_a_copy_with_the_val_images_in_train_is_another_fingerprint(tmp_path):
    """As it was, both copies were the dataset 'folder'; their training splits now differ."""
    a, b, _ = copies(tmp_path)
    assert folder(a).name == folder(b).name == "folder"  # all the old protocol knew
    assert split_fingerprint(folder(a), "train")["sha256"] != split_fingerprint(folder(b), "train")["sha256"]
    assert split_fingerprint(folder(a), "tune_train") != split_fingerprint(folder(b), "tune_train")
    # the evaluation split is the same data in both
    assert split_fingerprint(folder(a), "val")["sha256"] == split_fingerprint(folder(b), "val")["sha256"]


def test_a_clone_at_another_path_has_the_same_fingerprints(tmp_path):
    a, _, a2 = copies(tmp_path)
    for split in SPLITS:
        here, there = split_fingerprint(folder(a), split), split_fingerprint(folder(a2), split)
        assert here["sha256"] == there["sha256"] and here["root"] != there["root"]
    fp = split_fingerprint(folder(a), "train")
    assert (fp["samples"], fp["files"], fp["content"]) == (4, 8, "files")
    assert fp["bytes"] == sum(p.stat().st_size for p in (a / "images" / "train").iterdir()) + sum(
        p.stat().st_size for p in (a / "labels" / "train").iterdir()
    )


def test_a_small_split_is_fingerprinted_by_content(tmp_path):
    """A label edited in place keeps its size; a small split's fingerprint still changes."""
    a, _, a2 = copies(tmp_path)
    label = a2 / "labels" / "train" / "t0.png"
    data = bytearray(label.read_bytes())
    data[-20] ^= 0xFF
    label.write_bytes(bytes(data))
    assert split_fingerprint(folder(a), "train") != split_fingerprint(folder(a2), "train")
    assert split_fingerprint(folder(a), "val")["sha256"] == split_fingerprint(folder(a2), "val")["sha256"]


def test_a_large_split_by_ids_sizes_and_a_sample_of_contents(tmp_path, monkeypatch):
    monkeypatch.setattr(fpm, "CONTENT_FILES", 3)  # every split here is "large"
    monkeypatch.setattr(fpm, "SAMPLED", 2)
    a, b, a2 = copies(tmp_path)
    here = split_fingerprint(folder(a), "train")
    assert here["content"] == "sampled 2"
    assert split_fingerprint(folder(a2), "train")["sha256"] == here["sha256"]
    assert split_fingerprint(folder(b), "train")["sha256"] != here["sha256"]  # more ids
    renamed = a2 / "images" / "train" / "t3.jpg"  # same sizes, another id
    renamed.rename(renamed.with_name("x3.jpg"))
    (a2 / "labels" / "train" / "t3.png").rename(a2 / "labels" / "train" / "x3.png")
    assert split_fingerprint(folder(a2), "train")["sha256"] != here["sha256"]


def test_files_are_read_once_per_process(tmp_path, monkeypatch):
    a, _, _ = copies(tmp_path)
    reads = []
    real = fpm.sha256_file
    monkeypatch.setattr(fpm, "sha256_file", lambda p: reads.append(p) or real(p))
    monkeypatch.setattr(fpm, "_FILE_DIGESTS", {})
    ds = build_split(folder(a), "train")
    first = fingerprint(ds)
    assert len(reads) == 8
    assert fingerprint(ds) == first and len(reads) == 8  # cached by path, size, modification time
    image = a / "images" / "train" / "t0.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    assert fingerprint(ds) != first and len(reads) == 9  # the changed file is read again


def test_generated_data_by_its_settings():
    cfg = load_config(TINY).dataset
    fp = split_fingerprint(cfg, "train")
    assert (fp["content"], fp["samples"], fp["root"]) == ("generated", 24, None)
    assert split_fingerprint(cfg, "train") == fp
    assert split_fingerprint(dataclasses.replace(cfg, root="/anywhere"), "train") == fp
    assert split_fingerprint(dataclasses.replace(cfg, train_size=25), "train") != fp
    assert len({split_fingerprint(cfg, s)["sha256"] for s in SPLITS}) == 4


def test_a_repeats_hold_out_seed_leaves_the_training_split_as_it_is():
    """The demo's case: repeat 1 carves its own hold-out; its teacher trained on the same `train`."""
    cfg = load_config(TINY).dataset
    other = dataclasses.replace(cfg, holdout_seed=cfg.holdout_seed + 1, holdout_size=0.5)
    for split in ("train", "val"):
        assert split_fingerprint(other, split) == split_fingerprint(cfg, split)
    assert split_fingerprint(other, "tune_train") != split_fingerprint(cfg, "tune_train")


@pytest.mark.parametrize("split", ["tune_train", "tune_holdout"])
def test_the_hold_out_seed_changes_the_tuning_splits(tmp_path, split):
    a, _, _ = copies(tmp_path)
    one = split_fingerprint(folder(a, holdout_seed=0), split)
    others = {split_fingerprint(folder(a, holdout_seed=s), split)["sha256"] for s in range(1, 6)}
    assert others - {one["sha256"]}
