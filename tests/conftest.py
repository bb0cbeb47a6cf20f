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
    """A folder holding (briefly) trained synthetic teachers under their keys, and their MasKD tokens:
    the full-data teacher and the tuning teachers of :func:`sweep_args`' hold-out (two repeats)."""
    from bench.maskd_tokens import train_tokens
    from bench.teacher import part_overrides, teacher_config, train_teacher

    tmp = tmp_path_factory.mktemp("teacher")
    common = [*TINY, *HOLDOUT, "tune.repeats=2", f"teachers_dir={tmp / 'teachers'}"]
    for i, overrides in enumerate(part_overrides(common, "both")):
        run = f"output_dir={tmp / 'run' / str(i)}"
        train_teacher(teacher_config([*overrides, run]))
        train_tokens(load_config([*overrides, run]), 2)
    return tmp / "teachers"


# The tuning hold-out of the sweeps of the tests (its tuning teachers are in the teachers_dir fixture).
HOLDOUT = ["dataset.holdout_size=0.25"]


def sweep_args(tmp: Path, teachers: Path | None = None, *overrides: str) -> list[str]:
    """Overrides for a CPU-sized sweep whose studies, trials and finals live under ``tmp``."""
    return [
        *TINY,
        *HOLDOUT,
        f"tune.studies_dir={tmp / 'studies'}",
        f"tune.trials_dir={tmp / 'trials'}",
        f"tune.finals_dir={tmp / 'finals'}",
        f"teachers_dir={teachers or tmp / 'teachers'}",
        "tune.pruner=none",
        *overrides,
    ]
