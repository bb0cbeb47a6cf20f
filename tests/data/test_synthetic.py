"""The synthetic dataset is deterministic, well-formed and independent of the run seed."""

import torch

from bench.config.compose import load_config
from bench.data import build_split
from bench.data.sets.synthetic import SyntheticShapes

from ..conftest import TINY


def _cfg(*overrides):
    return load_config([*TINY, *overrides]).dataset


def test_same_seed_same_samples_in_a_fresh_dataset():
    a, b = SyntheticShapes(_cfg(), "train"), SyntheticShapes(_cfg(), "train")
    for i in (0, 5, 23):
        (ia, la), (ib, lb) = a[i], b[i]
        assert torch.equal(ia, ib) and torch.equal(la, lb)


def test_data_does_not_depend_on_the_run_seed():
    a, b = SyntheticShapes(_cfg("seed=0"), "val"), SyntheticShapes(_cfg("seed=7"), "val")
    assert torch.equal(a[0][0], b[0][0])


def test_generation_seed_split_and_index_change_the_sample():
    base = SyntheticShapes(_cfg(), "train")[0][0]
    assert not torch.equal(base, SyntheticShapes(_cfg(), "train")[1][0])
    assert not torch.equal(base, SyntheticShapes(_cfg(), "val")[0][0])
    assert not torch.equal(base, SyntheticShapes(_cfg("dataset.seed=1"), "train")[0][0])


def test_samples_are_well_formed():
    cfg = _cfg("dataset.image_size=[48,40]")
    ds = SyntheticShapes(cfg, "train")
    assert len(ds) == cfg.train_size and len(SyntheticShapes(cfg, "val")) == cfg.val_size
    seen = set()
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 48, 40)
        assert label.dtype == torch.int64 and label.shape == (48, 40)
        seen |= set(label.unique().tolist())
    assert seen <= set(range(cfg.num_classes)) | {cfg.ignore_index}
    assert cfg.ignore_index in seen and len(seen - {0, cfg.ignore_index}) >= 4  # objects of several classes
    assert len(ds.class_names) == cfg.num_classes


def test_ignore_band_is_configurable():
    _, label = SyntheticShapes(_cfg("dataset.ignore_width=0"), "train")[0]
    assert not (label == 255).any()


def test_holdout_is_disjoint_fixed_and_covers_train():
    cfg = _cfg("dataset.holdout_size=0.25")
    tune, held = build_split(cfg, "tune_train"), build_split(cfg, "tune_holdout")
    assert not set(tune.indices) & set(held.indices)
    assert sorted(tune.indices + held.indices) == list(range(cfg.train_size))
    assert len(held) == 6
    assert build_split(cfg, "tune_holdout").indices == held.indices  # fixed
    assert build_split(_cfg("dataset.holdout_size=0.25", "seed=3"), "tune_holdout").indices == held.indices
    other = build_split(_cfg("dataset.holdout_size=0.25", "dataset.holdout_seed=1"), "tune_holdout")
    assert other.indices != held.indices


def test_renders_are_shared_by_datasets_of_the_same_settings():
    # Every trial builds new datasets: renders are kept per process, keyed by settings and split.
    a, b = SyntheticShapes(_cfg(), "train"), SyntheticShapes(_cfg(), "train")
    first = a[3]
    assert b[3] is first  # not rendered again
    other = SyntheticShapes(_cfg("dataset.seed=5"), "train")
    assert not torch.equal(other[3][0], first[0])
    assert SyntheticShapes(_cfg(), "val")[3] is not first
