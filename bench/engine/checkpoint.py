"""Training checkpoints (everything a bit-identical resume needs) and the run-folder policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.errors import CheckpointError, ConfigError
from bench.results import RESULT_FILE, read_row
from bench.utils.io import save_torch_atomic

CHECKPOINT = "checkpoints/last.pt"


def checkpoint_path(output_dir: Path) -> Path:
    return Path(output_dir) / CHECKPOINT


def save_checkpoint(output_dir: Path, state: dict[str, Any]) -> Path:
    return save_torch_atomic(checkpoint_path(output_dir), state)


def load_checkpoint(output_dir: Path, config_hash: str) -> dict[str, Any] | None:
    """The run's last checkpoint, or None; a checkpoint of another config is an error."""
    path = checkpoint_path(output_dir)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["config_hash"] != config_hash:
        raise CheckpointError(
            f"{path} was written by a different config (hash {state['config_hash']} ≠ {config_hash}); "
            "use another output_dir, or delete the folder to start over"
        )
    return state


def finished_row(output_dir: Path, config_hash: str) -> dict[str, Any] | None:
    """The result row of a finished run of this config in ``output_dir``, if there is one.

    A row of another config is an error: resuming would overwrite it.
    """
    path = Path(output_dir) / RESULT_FILE
    if not path.is_file():
        return None
    row = read_row(path)
    if row.get("config_hash") != config_hash:
        raise CheckpointError(
            f"{path} holds a run of a different config (hash {row.get('config_hash')} ≠ {config_hash}); "
            "use another output_dir, or delete the folder to start over"
        )
    return row


def check_output_dir(output_dir: Path, resume: bool) -> None:
    """Refuse to overwrite a previous run unless ``resume=true``."""
    out = Path(output_dir)
    if not resume and ((out / RESULT_FILE).exists() or checkpoint_path(out).exists()):
        raise ConfigError(
            f"output_dir {out} already holds a run; pass resume=true to continue (or reuse) it, or "
            "choose another output_dir / delete the folder to start over"
        )
