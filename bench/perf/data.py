"""Training input pipeline throughput per dataset: does the loader keep up with the GPU?

``python -m bench.perf.data [--datasets NAME ...] [--root [NAME=]DIR ...] [--workers N ...]
[--steps S] [--images N] [key=value ...]``

Each dataset is loaded exactly as training loads it: the run config (its ``train`` preset, plus any
``key=value`` overrides such as ``protocol=mmseg80k``) gives the crop, augmentation, batch size and
``train.num_workers``; batches come from :class:`~bench.data.pipeline.TrainBatchSampler` through
:func:`~bench.data.pipeline.make_loader` (decoding and augmentation in worker processes, pinned
memory on CUDA machines, persistent workers). A real copy is used when ``--root`` or
``$SEGKD_DATA_ROOT/<folder>`` points to one; otherwise a few images are generated in the dataset's
official layout at its real resolution (PNG/JPEG as distributed) in a temporary folder.

The report gives images/s and milliseconds per batch after a warm-up of one batch per worker; the
loader keeps up when a training step takes at least that long.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

from bench.cli import answer_help

answer_help(__name__, __doc__.strip())  # before torch: --help answers at once

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bench.config.compose import load_config
from bench.config.schema import RunConfig
from bench.data import DATASETS, build_split
from bench.data.base import default_palette
from bench.data.files import DATA_ROOT_ENV, FileDataset
from bench.data.pipeline import AugmentedView, TrainBatchSampler, make_loader
from bench.errors import BenchError

DEFAULT_DATASETS = ("synthetic", "cityscapes", "ade20k", "voc", "camvid")
Size = tuple[int, int]
# (height, width) as distributed; ADE20K's sizes vary, 512 × 683 is typical.
SIZES: dict[str, Size] = {
    "cityscapes": (1024, 2048),
    "ade20k": (512, 683),
    "voc": (375, 500),
    "camvid": (360, 480),
    "coco_stuff164k": (480, 640),  # COCO 2017: mostly 640 on the long side
}


# ------------------------------------------------------------------ generated official layouts
def _photo(h: int, w: int, g: torch.Generator) -> np.ndarray:
    """A smooth random image with fine noise: compresses about like a photograph."""
    base = F.interpolate(torch.rand(1, 3, h // 32 + 1, w // 32 + 1, generator=g), size=(h, w), mode="bicubic")
    image = base[0] * 200 + 20 + 2 * torch.randn(3, h, w, generator=g)
    return image.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _regions(h: int, w: int, values: Sequence[int], g: torch.Generator) -> np.ndarray:
    """Piecewise-constant labels (regions of about 1/16 of the height) drawn from ``values``."""
    cells = torch.randint(len(values), (h // 16 + 1, w // 16 + 1), generator=g)
    grid = F.interpolate(cells[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
    return np.asarray(values, dtype=np.uint8)[grid.numpy()]


def _save(path: Path, array: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array)
    if palette:
        im = im.convert("P")
        im.putpalette([c for rgb in default_palette(256) for c in rgb])
    im.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))


def _cityscapes(root: Path, split: str, i: int, size: Size, g: torch.Generator) -> None:
    stem = f"perf/perf_000000_{i:06d}"
    _save(root / "leftImg8bit" / split / f"{stem}_leftImg8bit.png", _photo(*size, g))
    _save(root / "gtFine" / split / f"{stem}_gtFine_labelIds.png", _regions(*size, range(34), g))


def _ade20k(root: Path, split: str, i: int, size: Size, g: torch.Generator) -> None:
    subset, prefix = ("training", "train") if split == "train" else ("validation", "val")
    stem = f"ADE_{prefix}_{i + 1:08d}"
    _save(root / "images" / subset / f"{stem}.jpg", _photo(*size, g))
    _save(root / "annotations" / subset / f"{stem}.png", _regions(*size, range(151), g))


def _voc(root: Path, split: str, i: int, size: Size, g: torch.Generator) -> None:
    id_ = f"2007_{i:06d}" if split == "train" else f"2008_{i:06d}"
    _save(root / "JPEGImages" / f"{id_}.jpg", _photo(*size, g))
    label = _regions(*size, [*range(21), 255], g)
    _save(
        root / ("SegmentationClassAug" if split == "train" else "SegmentationClass") / f"{id_}.png",
        label,
        split == "val",
    )
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    with (lists / ("train_aug.txt" if split == "train" else "val.txt")).open("a") as f:
        f.write(f"{id_}\n")


def _camvid(root: Path, split: str, i: int, size: Size, g: torch.Generator) -> None:
    name = f"0001TP_{i:06d}.png"
    _save(root / split / name, _photo(*size, g))
    _save(root / f"{split}annot" / name, _regions(*size, range(12), g))


def _coco_stuff164k(root: Path, split: str, i: int, size: Size, g: torch.Generator) -> None:
    subset = "train2017" if split == "train" else "val2017"
    stem = f"{2 * i + (split != 'train'):012d}"
    _save(root / "images" / subset / f"{stem}.jpg", _photo(*size, g))
    _save(root / "annotations" / subset / f"{stem}_labelTrainIds.png", _regions(*size, [*range(171), 255], g))


WRITERS: dict[str, Callable[[Path, str, int, Size, torch.Generator], None]] = {
    "cityscapes": _cityscapes,
    "ade20k": _ade20k,
    "voc": _voc,
    "camvid": _camvid,
    "coco_stuff164k": _coco_stuff164k,
}


def write_layout(
    name: str, root: Path, train_images: int, val_images: int = 1, size: Size | None = None
) -> Path:
    """Generate ``name`` in its official layout under ``root`` (random content, the dataset's typical
    image size unless ``size`` is given); returns ``root``."""
    g = torch.Generator().manual_seed(0)
    for split, count in (("train", train_images), ("val", val_images)):
        for i in range(count):
            WRITERS[name](root, split, i, size or SIZES[name], g)
    return root


# ------------------------------------------------------------------ measurement
def measure(cfg: RunConfig, workers: int, steps: int) -> dict[str, float]:
    """Images/s of the training loader of ``cfg`` with ``workers`` worker processes."""
    t = cfg.train
    view = AugmentedView(build_split(cfg.dataset, t.split), t.augment, t.crop_size, cfg.dataset.ignore_index)
    warmup = workers + 1  # the first batches arrive while every worker has been filling the queue
    sampler = TrainBatchSampler(len(view), t.batch_size, cfg.seed, warmup + steps)
    loader = make_loader(view, sampler, num_workers=workers, pin_memory=torch.cuda.is_available())
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    seconds = time.perf_counter() - start
    del it, loader  # stops the persistent workers
    return {"images_per_s": steps * t.batch_size / seconds, "ms_per_batch": 1000 * seconds / steps}


def _config(name: str, root: Path | None, overrides: Sequence[str]) -> RunConfig:
    extra = [f"dataset.root={root}"] if root is not None else []
    # a benchmark reads whatever copy it is given (generated ones hold a few images)
    extra.append("dataset.allow_partial=true")
    return load_config([f"dataset={name}", "device=cpu", "output_dir=unused", *extra, *overrides])


def _real_root(name: str, roots: dict[str, Path]) -> Path | None:
    if name in roots:
        return roots[name]
    cls = DATASETS.get(name)
    env = os.environ.get(DATA_ROOT_ENV)
    if issubclass(cls, FileDataset) and env and (Path(env) / cls.folder).is_dir():
        return Path(env) / cls.folder
    return None


def _settings(cfg: RunConfig, source: str, workers: list[int]) -> str:
    t, a = cfg.train, cfg.train.augment
    sample = build_split(cfg.dataset, t.split)[0][0]
    return (
        f"{cfg.dataset.name}: {source}; image {tuple(sample.shape[1:])}, crop {t.crop_size}, "
        f"batch {t.batch_size}, workers {workers}; scale {a.scale_range} step {a.scale_step} "
        f"base {a.base_size}, flip {a.hflip}, cat_max_ratio {a.cat_max_ratio}, "
        f"photometric {a.photometric}, jitter {a.jitter}"
    )


@contextlib.contextmanager
def _log_level(level: int):
    logger = logging.getLogger("bench")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _parse_roots(values: Sequence[str], names: Sequence[str]) -> dict[str, Path]:
    roots = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            if len(names) != 1:
                raise BenchError("--root DIR needs a single --datasets entry; otherwise use --root NAME=DIR")
            name, path = names[0], value
        roots[name] = Path(path)
    return roots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf.data",
        description=__doc__.splitlines()[0],
        epilog="key=value: config overrides",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), help="datasets to measure")
    parser.add_argument("--root", action="append", default=[], help="[NAME=]DIR of a real copy (repeatable)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (default: train.num_workers)")
    parser.add_argument("--steps", type=int, default=20, help="timed batches per measurement (default 20)")
    parser.add_argument("--images", type=int, default=16, help="generated training images per dataset")
    args, overrides = parser.parse_known_args(argv)
    if bad := [o for o in overrides if "=" not in o]:
        parser.error(f"unknown arguments {bad}")
    try:
        roots = _parse_roots(args.root, args.datasets)
        print(
            f"torch {torch.__version__}, {os.cpu_count()} CPUs, pin_memory={torch.cuda.is_available()}, "
            "persistent workers, prefetch 4 batches per worker, one thread per worker"
        )
        rows = []
        with tempfile.TemporaryDirectory(prefix="segkd-perf-") as tmp:
            for name in args.datasets:
                root = _real_root(name, roots)
                generated = root is None
                if generated and name in WRITERS:
                    root = write_layout(name, Path(tmp) / name, args.images)
                source = "generated" if generated else f"real data at {root}"
                # A generated copy is small on purpose: no incomplete-copy warnings for it.
                with _log_level(logging.ERROR if generated else logging.WARNING):
                    cfg = _config(name, root, overrides)
                    workers = args.workers or [cfg.train.num_workers]
                    print(_settings(cfg, source, workers))
                    for n in workers:
                        rows.append((name, n, cfg.train.batch_size, measure(cfg, n, args.steps)))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"\n{'dataset':<12}{'workers':>8}{'batch':>7}{'images/s':>10}{'ms/batch':>10}")
    for name, n, batch, r in rows:
        print(f"{name:<12}{n:>8}{batch:>7}{r['images_per_s']:>10.1f}{r['ms_per_batch']:>10.0f}")
    print("\nThe loader keeps up when a training step takes at least ms/batch (step_time_ms in result.json).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
