"""The result row: one JSON file per run with metrics, config, provenance and cost.

Rows are written atomically; the report (``make report``) reads them back with :func:`load_rows`.
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

from bench.utils.io import write_json_atomic

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
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
    return json.loads(Path(path).read_text())


def load_rows(root: Path) -> list[dict[str, Any]]:
    """Every result row under ``root`` (recursively)."""
    return [read_row(p) for p in sorted(Path(root).rglob(RESULT_FILE))]
