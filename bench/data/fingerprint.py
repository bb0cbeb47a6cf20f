"""Data identity: a fingerprint of each split a run reads, the same for every copy of the same data.

A protocol that names a dataset only by its name cannot tell two copies apart: a copy with the
validation images copied into ``train`` is still ``folder``. A split's fingerprint says what it holds,
not where it lies:

- file datasets: the sorted sample ids (each image's and label's path relative to the dataset root)
  and every file's size; a small split (at most :data:`CONTENT_FILES` files and
  :data:`CONTENT_BYTES` bytes, e.g. a custom dataset or CamVid) also by every file's contents
  (``content: files``). A large split (ADE20K's 20,210 training images, 40k files) is fingerprinted
  by ids and sizes plus the contents of :data:`SAMPLED` files spread evenly over it
  (``content: sampled``): one ``stat`` per file, a fraction of a second;
- generated datasets (``synthetic``): their generation settings and sample indices (``content:
  generated``), which determine every pixel (not the hold-out's settings: a repeat's own hold-out
  seed leaves ``train`` as it is).

The root itself is left out, so a clone of the same data elsewhere has the same fingerprint; it is
recorded beside it (``root``) for messages only. Files' digests are kept per process by (path, size,
modification time), so a split is read once per run however often it is fingerprinted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from bench.config.schema import DatasetConfig
from bench.utils.io import sha256_file

# A split this small (files and bytes) is fingerprinted by its files' contents too.
CONTENT_FILES = 2000
CONTENT_BYTES = 256 << 20
SAMPLED = 64  # files of a larger split whose contents are read (evenly spread over its sorted list)
SHORT = 12  # hex digits shown in messages and tables
# Dataset settings that do not change a split's samples: where a copy is, how the hold-out is carved
# (the tuning splits' indices carry that), checks, and the splits' sizes (the indices carry those).
NOT_CONTENT = ("root", "holdout_size", "holdout_seed", "allow_partial", "train_size", "val_size")

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def fingerprint(dataset: Dataset) -> dict[str, Any]:
    """The fingerprint of one split as built by :func:`bench.data.splits.build_split`.

    ``{"samples", "files", "bytes", "content", "sha256", "root"}``; two splits hold the same data
    iff their ``sha256`` are equal (``root`` is not part of it). Callers key it by the split's name
    (``{"train": …, "val": …}`` in a result row and a teacher checkpoint).
    """
    base, indices = _base_and_indices(dataset)
    pairs = getattr(base, "pairs", None)
    if pairs is None:
        return _generated(base, indices)
    return _files(Path(base.root), [pairs[i] for i in indices])


def short(fp: dict[str, Any] | str | None) -> str:
    """``1a2b3c4d5e6f`` (``unknown`` when not recorded)."""
    digest = fp.get("sha256") if isinstance(fp, dict) else fp
    return digest[:SHORT] if digest else "unknown"


def describe(fp: dict[str, Any]) -> str:
    """``1a2b3c4d5e6f (24 samples under /data/a)`` for a message (the root: where it was read)."""
    where = f"under {fp['root']}" if fp.get("root") else "generated"
    return f"{short(fp)} ({fp.get('samples')} samples {where})"


def split_fingerprint(cfg: DatasetConfig, split: str) -> dict[str, Any]:
    """The fingerprint of ``split`` of the copy ``cfg`` points at (lists the split; decodes nothing)."""
    from bench.data.splits import build_split

    return fingerprint(build_split(cfg, split))


def _base_and_indices(dataset: Dataset) -> tuple[Dataset, list[int]]:
    if isinstance(dataset, Subset):
        base, indices = _base_and_indices(dataset.dataset)
        return base, [indices[i] for i in dataset.indices]
    return dataset, list(range(len(dataset)))  # type: ignore[arg-type]


def _generated(dataset: Dataset, indices: list[int]) -> dict[str, Any]:
    cfg = getattr(dataset, "cfg", None)
    settings = {k: v for k, v in asdict(cfg).items() if k not in NOT_CONTENT} if cfg is not None else {}
    text = json.dumps(
        {
            "class": type(dataset).__name__,
            "split": getattr(dataset, "split", None),
            "settings": settings,
            "indices": indices,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {
        "samples": len(indices),
        "files": 0,
        "bytes": 0,
        "content": "generated",
        "sha256": digest,
        "root": None,
    }


def _files(root: Path, pairs: list[tuple[Path, Path]]) -> dict[str, Any]:
    prefix = str(root).rstrip(os.sep) + os.sep
    named = sorted((_relative(f, root, prefix), f) for f in {str(p) for pair in pairs for p in pair})
    stats = [os.stat(f) for _, f in named]
    total = sum(s.st_size for s in stats)
    small = len(named) <= CONTENT_FILES and total <= CONTENT_BYTES
    step = max(len(named) // SAMPLED, 1)
    read = set(range(len(named))) if small else set(range(0, len(named), step)[:SAMPLED])
    h = hashlib.sha256()
    for i, ((rel, f), s) in enumerate(zip(named, stats, strict=True)):
        digest = _file_digest(f, s) if i in read else ""
        h.update(f"{rel}\t{s.st_size}\t{digest}\n".encode())
    return {
        "samples": len(pairs),
        "files": len(named),
        "bytes": total,
        "content": "files" if small else f"sampled {len(read)}",
        "sha256": h.hexdigest(),
        "root": str(root),
    }


def _relative(path: str, root: Path, prefix: str) -> str:
    """``path`` relative to ``root``, with ``/`` (the common case by slicing: 40k paths in milliseconds)."""
    rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    return rel.replace(os.sep, "/")


def _file_digest(path: str, stat: os.stat_result) -> str:
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = sha256_file(path)
    return _FILE_DIGESTS[key]
