"""Decode every file of a dataset copy once: ``python -m bench.check_data dataset=... [key=value ...]``.

``make check-data DATASET=cityscapes`` reads each split the composed config trains and evaluates on
(``train`` and ``val``), decoding every image and label in DataLoader workers exactly as training
does, and prints per split the number of images (against the official count), the image sizes, the
label values found and every fault: unreadable or truncated files, image/label pairs of different
sizes, label values outside the dataset's classes, a split size different from the official one
(unless ``dataset.allow_partial=true``) and training images that are also in the evaluation split.
It exits with status 2 when it found any fault, so it can gate a cluster job before hours of training.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from bench.cli import run_cli
from bench.config.compose import load_config
from bench.data import DATASETS
from bench.data.files import FileDataset
from bench.errors import ConfigError, DataError

USAGE = """usage: python -m bench.check_data [dataset=...] [dataset.root=...] [key=value ...]

Decodes every image and label of the dataset's train and val splits once (train.num_workers
processes), prints counts, sizes and label values, and exits with status 2 on any fault."""

MAX_LISTED = 10  # faults printed per kind; the count covers all


class _Decoded(Dataset):
    """Per file pair: its size and the raw label values that map outside the classes, or the error."""

    def __init__(self, ds: FileDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict:
        try:
            image, raw, label = self.ds.load(index)
        except DataError as e:
            return {"index": index, "error": str(e)}
        cfg = self.ds.cfg
        outside = (label != cfg.ignore_index) & ((label < 0) | (label >= cfg.num_classes))
        return {
            "index": index,
            "size": tuple(image.shape[-2:]),
            "values": np.unique(label.numpy()).tolist(),
            "outside": np.unique(raw[outside.numpy()]).tolist(),
        }


def _identity(item: dict) -> dict:
    return item


@dataclass
class SplitReport:
    split: str
    images: int = 0
    official: int | None = None
    ignore_index: int = 255
    sizes: Counter = field(default_factory=Counter)
    values: set = field(default_factory=set)
    faults: list[str] = field(default_factory=list)


def check_split(ds: FileDataset, workers: int, progress: bool) -> SplitReport:
    """Decode every pair of ``ds`` once and collect what it holds and what is wrong with it."""
    report = SplitReport(ds.split, len(ds), ds.official_size(ds.split), ds.cfg.ignore_index)
    for check in (ds.check_size, *([ds.check_disjoint_from_val] if ds.split == "train" else [])):
        try:
            check()
        except DataError as e:
            report.faults.append(str(e))
    loader = DataLoader(_Decoded(ds), batch_size=None, num_workers=workers, collate_fn=_identity)
    outside: dict[int, list[str]] = {}
    for item in tqdm(loader, total=len(ds), desc=f"{ds.cfg.name} {ds.split}", disable=not progress):
        if "error" in item:
            report.faults.append(item["error"])
            continue
        report.sizes[item["size"]] += 1
        report.values.update(item["values"])
        for value in item["outside"]:
            outside.setdefault(value, []).append(str(ds.pairs[item["index"]][1]))
    for value, files in sorted(outside.items()):
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        report.faults.append(
            f"raw label value {value} maps outside the {ds.cfg.num_classes} classes (and is not ignore) in "
            f"{len(files)} file(s): {shown}"
        )
    return report


def format_report(name: str, report: SplitReport) -> str:
    official = f" (official {report.official})" if report.official is not None else ""
    heights = [h for h, _ in report.sizes.elements()]
    widths = [w for _, w in report.sizes.elements()]
    sizes = (
        f"{min(heights)}-{max(heights)} × {min(widths)}-{max(widths)} (h × w), {len(report.sizes)} distinct; "
        f"most common {report.sizes.most_common(1)[0][0]}"
        if report.sizes
        else "none decoded"
    )
    ids = sorted(v for v in report.values if v != report.ignore_index)
    lines = [
        f"{name} {report.split}: {report.images} images{official}",
        f"  sizes: {sizes}",
        f"  label ids present: {len(ids)}"
        + (f" ({ids[0]}..{ids[-1]}; {report.ignore_index} = ignore)" if ids else ""),
        f"  faults: {len(report.faults)}",
    ]
    lines += [f"    - {f}".replace("\n", "\n      ") for f in report.faults[:MAX_LISTED]]
    if len(report.faults) > MAX_LISTED:
        lines.append(f"    ... and {len(report.faults) - MAX_LISTED} more")
    return "\n".join(lines)


def main(overrides: list[str]) -> None:
    cfg = load_config(overrides)
    cls = DATASETS.get(cfg.dataset.name)
    if not issubclass(cls, FileDataset):
        raise ConfigError(f"dataset '{cfg.dataset.name}' has no files to check (it is generated)")
    reports = []
    for split in ("train", "val"):
        try:
            ds = cls(cfg.dataset, split, checks=False)
        except DataError as e:  # the split cannot even be listed
            reports.append(SplitReport(split, faults=[str(e)]))
            continue
        reports.append(check_split(ds, cfg.train.num_workers, cfg.progress))
    print("\n\n".join(format_report(cfg.dataset.name, r) for r in reports))
    faults = sum(len(r.faults) for r in reports)
    if faults:
        raise DataError(f"{faults} fault(s) in the {cfg.dataset.name} copy (listed above)")
    print(f"\n{cfg.dataset.name}: every file decoded, no fault")


if __name__ == "__main__":
    torch.set_num_threads(1)
    run_cli(main, "run", USAGE)
