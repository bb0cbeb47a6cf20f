"""The result row: one JSON file per run with metrics, config, provenance and cost.

Rows are written atomically; the report (``make report``) reads them back with :func:`load_rows`.
Scores are in percent (``"metrics_unit": "percent"``); :func:`read_row` gives a row written in
fractions of 1 (``"metrics_unit": "fraction"``, or no unit: rows before it was recorded) in percent.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.utils.io import write_json_atomic
from bench.utils.units import FRACTION, PERCENT, list_to_percent, to_percent

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
METRICS_UNIT = PERCENT  # the unit of every score a row holds (metrics, history, tuning facts)
# the scores a row holds besides ``metrics`` and ``history``, by their path in the row
SCORES = (
    ("tuning", "holdout_miou"),
    ("tuning", "literature_default_miou"),
    ("tuning", "teacher_miou"),
    ("tuning", "best_so_far"),  # lists
    ("tuning", "holdout_values"),
    ("tuning", "fidelity", "tuning_score"),  # make fidelity's runs
)
PACKAGES = (
    "torch",
    "torchvision",
    "segmentation-models-pytorch",
    "timm",
    "hydra-core",
    "omegaconf",
    "optuna",
    "numpy",
    "segkd-bench",
)


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """Commit hash, whether tracked files differ from it and the SHA-256 of that difference (``git diff
    HEAD``); None outside a git checkout."""
    repo = repo or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        # which uncommitted changes: runs of one commit and the same changes ran the same code
        diff = hashlib.sha256(git("diff", "HEAD", "--binary").encode()).hexdigest() if dirty else None
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "diff_sha256": None}
    return {"commit": commit, "dirty": dirty, "diff_sha256": diff}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(device: torch.device) -> dict[str, Any]:
    """Code version, package versions and hardware of this process."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "git": git_state(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": name,
        "torch_threads": torch.get_num_threads(),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),  # torchrun: the run's ranks
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }


def write_row(output_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """Stamp ``row`` with the schema version and time, write it atomically, return it as written."""
    row = {"schema_version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **row}
    write_json_atomic(Path(output_dir) / RESULT_FILE, row)
    return row


def read_row(path: Path) -> dict[str, Any]:
    """The row of a ``result.json``, its scores in percent (:func:`in_percent`)."""
    try:
        return in_percent(json.loads(Path(path).read_text()))
    except ValueError as e:  # an unknown metrics_unit: not a row this version can read
        if isinstance(e, json.JSONDecodeError):
            raise
        raise BenchError(f"{path}: {e} (its 'metrics_unit'); restore the file or rerun its run") from None


def _converted(part: Any, path: tuple[str, ...], unit: str) -> Any:
    """``part`` with the score (or list of scores) at ``path`` in percent; copies what it changes."""
    if not isinstance(part, dict) or path[0] not in part:
        return part
    value = part[path[0]]
    if len(path) > 1:
        return {**part, path[0]: _converted(value, path[1:], unit)}
    converted = list_to_percent(value, unit) if isinstance(value, list) else to_percent(value, unit)
    return {**part, path[0]: converted}


def metrics_in_percent(metrics: dict[str, Any], unit: str) -> dict[str, Any]:
    """A row's (or a teacher checkpoint's) ``metrics``, recorded in ``unit``, in percent."""
    m = dict(metrics)
    for key in ("miou", "aacc", "macc"):
        if key in m:
            m[key] = to_percent(m[key], unit)
    for key in ("iou", "acc"):
        if key in m:
            m[key] = list_to_percent(m[key], unit)
    return m


def in_percent(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every score in percent, converted by the unit it records (``metrics_unit``; rows
    written before the unit was recorded hold fractions); a row already in percent is returned as is."""
    unit = row.get("metrics_unit", FRACTION)
    if unit == PERCENT:
        return row
    out = dict(row, metrics_unit=PERCENT, converted_from=unit)
    if isinstance(row.get("metrics"), dict):
        out["metrics"] = metrics_in_percent(row["metrics"], unit)
    if isinstance(row.get("history"), list):
        out["history"] = [
            {**h, "val_miou": to_percent(h["val_miou"], unit)} if "val_miou" in h else h
            for h in row["history"]
        ]
    for path in SCORES:
        out = _converted(out, path, unit)
    return out


def load_rows(root: Path) -> list[dict[str, Any]]:
    """Every result row under ``root`` (recursively)."""
    return [read_row(p) for p in sorted(Path(root).rglob(RESULT_FILE))]
