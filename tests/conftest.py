"""Shared fixtures: CPU-sized configs composed from the real conf/ files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import RunConfig
from bench.config.compose import load_config
from bench.engine.trainer import Callback

# Small enough that a run takes about a second on one CPU core.
TINY_SYNTHETIC = ["dataset.train_size=24", "dataset.val_size=6", "dataset.image_size=[32,32]"]
TINY_TRAIN = [
    "train.iterations=6",
    "train.batch_size=4",
    "train.log_interval=2",
    "train.checkpoint_interval=0",
    "train.schedule.warmup_iters=2",
    "progress=false",
    "device=cpu",
]
TINY = TINY_SYNTHETIC + TINY_TRAIN


def tiny_config(tmp: Path, *overrides: str, config_name: str = "run") -> RunConfig:
    return load_config(
        [*TINY, f"output_dir={tmp / 'run'}", f"teachers_dir={tmp / 'teachers'}", *overrides], config_name
    )


class CrashAt(Callback):
    """Raises at the end of optimizer step ``step``: a run killed between two checkpoints."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int) -> None:
        if step == self.step:
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="session")
def teachers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a (briefly) trained synthetic teacher under its key, and its MasKD tokens."""
    from bench.maskd_tokens import train_tokens
    from bench.teacher import teacher_config, train_teacher

    tmp = tmp_path_factory.mktemp("teacher")
    cfg = teacher_config([*TINY, f"output_dir={tmp / 'run'}", f"teachers_dir={tmp / 'teachers'}"])
    train_teacher(cfg)
    train_tokens(load_config([*TINY, f"output_dir={tmp / 'run'}", f"teachers_dir={tmp / 'teachers'}"]), 2)
    return tmp / "teachers"


def sweep_args(tmp: Path, teachers: Path | None = None, *overrides: str) -> list[str]:
    """Overrides for a CPU-sized sweep whose studies, trials and finals live under ``tmp``."""
    return [
        *TINY,
        "dataset.holdout_size=0.25",
        f"tune.studies_dir={tmp / 'studies'}",
        f"tune.trials_dir={tmp / 'trials'}",
        f"tune.finals_dir={tmp / 'finals'}",
        f"teachers_dir={teachers or tmp / 'teachers'}",
        "tune.pruner=none",
        *overrides,
    ]
