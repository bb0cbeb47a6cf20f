"""Faults of real copies a user meets: each is refused (or recovered) with a message naming the cause."""

from __future__ import annotations

import shutil

import pytest

from bench.config.compose import load_config
from bench.data import build_split
from bench.errors import DataError

from .layouts import WRITERS, write_camvid, write_voc

PARTIAL = "dataset.allow_partial=true"


def _cfg(name: str, root, *overrides: str):
    return load_config([f"dataset={name}", f"dataset.root={root}", PARTIAL, *overrides]).dataset


def test_voc_training_list_with_val_ids_is_refused_naming_them(tmp_path):
    write_voc(tmp_path)
    sets = tmp_path / "ImageSets" / "Segmentation"
    with (sets / "train_aug.txt").open("a") as f:
        f.write("/JPEGImages/2007_000033.jpg /SegmentationClassAug/2007_000033.png\n")
    with pytest.raises(
        DataError, match=r"1 training image\(s\) are also in the evaluation split \(2007_000033\)"
    ):
        build_split(_cfg("voc", tmp_path), "train")
    with pytest.raises(DataError, match="2007_000033"):  # the tuning splits come from train: refused too
        build_split(_cfg("voc", tmp_path), "tune_train")


def test_camvid_train_and_val_evaluated_on_val_is_refused(tmp_path):
    write_camvid(tmp_path)
    cfg = _cfg("camvid", tmp_path, "dataset.train_sets=[train,val]", "dataset.val_set=val")
    with pytest.raises(DataError, match=r"2 training image.*0001TP_006690.*dataset.val_set=test"):
        build_split(cfg, "train")
    ok = _cfg("camvid", tmp_path, "dataset.train_sets=[train,val]", "dataset.val_set=test")
    assert len(build_split(ok, "train")) == 5


def test_empty_list_file_is_named(tmp_path):
    write_voc(tmp_path)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("\n")
    with pytest.raises(DataError, match=r"list file .*val.txt is empty"):
        build_split(_cfg("voc", tmp_path), "val")


def test_voc_root_a_level_too_high_is_named_not_blamed_on_sbd(tmp_path):
    write_voc(tmp_path / "VOCdevkit" / "VOC2012")
    for root in (tmp_path / "VOCdevkit", tmp_path):
        with pytest.raises(
            DataError, match=r"a level too high; pass dataset.root=.*VOCdevkit/VOC2012"
        ) as err:
            build_split(_cfg("voc", root), "train")
        assert "SBD" not in str(err.value).split("Expected layout")[0]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_root_a_level_too_high_for_every_dataset(tmp_path, name):
    WRITERS[name](tmp_path / "copy")
    if name == "camvid":  # CamVid's layout has no distinctive folder: the missing folders are named
        with pytest.raises(DataError, match="missing"):
            build_split(_cfg(name, tmp_path), "train")
        return
    with pytest.raises(DataError, match=f"pass dataset.root={tmp_path / 'copy'}"):
        build_split(_cfg(name, tmp_path), "train")


def test_worker_errors_read_like_main_process_errors(tmp_path):
    """A corrupt file in a DataLoader worker gives the same one-line message as in the main process."""
    from bench.data.pipeline import make_loader

    WRITERS["ade20k"](tmp_path)
    bad = sorted((tmp_path / "images" / "training").glob("*.jpg"))[0]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    ds = build_split(_cfg("ade20k", tmp_path), "train")
    with pytest.raises(DataError) as main:
        ds[0]
    with pytest.raises(DataError) as worker:
        next(iter(make_loader(ds, num_workers=1)))
    assert str(worker.value) == str(main.value)
    assert "DataLoader worker" not in str(worker.value) and str(bad) in str(worker.value)


def test_ok_roots_still_load(tmp_path):
    for name, writer in WRITERS.items():
        writer(tmp_path / name)
        assert len(build_split(_cfg(name, tmp_path / name), "val")) >= 1
    shutil.rmtree(tmp_path)


@pytest.mark.slow
def test_failed_evaluation_is_finished_with_resume(tmp_path):
    """A bad evaluation file found after training: the error says resume=true; that evaluates the saved
    model (no retraining) once the file is fixed. Before, the rerun was refused ("already holds a run")."""
    from bench.engine.trainer import train_run

    from ..conftest import TINY_TRAIN

    WRITERS["ade20k"](tmp_path / "data")
    label = sorted((tmp_path / "data" / "annotations" / "validation").glob("*.png"))[0]
    good = label.read_bytes()
    label.write_bytes(good[:60])
    overrides = [
        "dataset=ade20k", f"dataset.root={tmp_path / 'data'}", PARTIAL, "student=deeplabv3_tiny",
        "teacher=deeplabv3_small", "train.crop_size=[32,32]", "train.num_workers=0", *TINY_TRAIN,
        f"output_dir={tmp_path / 'run'}",
    ]  # fmt: skip
    with pytest.raises(DataError, match=r"cannot read label .*\n.*evaluation failed.*resume=true"):
        train_run(load_config(overrides))
    label.write_bytes(good)
    row = train_run(load_config([*overrides, "resume=true"]))
    assert row["metrics"]["miou"] >= 0 and row["history"][-1]["step"] == 6
