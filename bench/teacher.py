"""Train a teacher and store it under its key: ``python -m bench.teacher dataset=... teacher=...``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bench.cli import run_cli

if TYPE_CHECKING:  # torch, Hydra and the trainer load inside the functions: --help answers at once
    from bench.config import RunConfig

log = logging.getLogger("bench")

USAGE = """usage: python -m bench.teacher [--cfg] [dataset=...] [teacher=...] [key=value ...]

Trains the teacher preset with CE (+ aux CE) under conf/train/<dataset>_teacher.yaml and saves it to
<teachers_dir>/<dataset>/<teacher>.pt, where student runs look it up."""


def teacher_config(overrides: list[str]) -> RunConfig:
    """The run config that trains the ``teacher`` preset as the network (method: baseline)."""
    from omegaconf import OmegaConf

    from bench.config import ModelConfig
    from bench.config.compose import compose_raw, validate

    raw = compose_raw(overrides, "teacher_run")
    network = {k: v for k, v in raw.teacher.items() if k != "checkpoint"}
    raw.student = OmegaConf.merge(OmegaConf.structured(ModelConfig), network)
    return validate(raw)


def train_teacher(cfg: RunConfig) -> dict:
    """Train the teacher network of ``cfg`` and store it; returns the run's result row."""
    import torch

    from bench.engine.trainer import Trainer
    from bench.teachers import save_teacher, teacher_path

    trainer = Trainer(cfg, label=f"teacher {cfg.teacher.name}/seed{cfg.seed}")
    row = trainer.fit()
    if not trainer.dist.is_main:  # torchrun: rank 0 stores the teacher
        return row
    weights = torch.load(trainer.out / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    trainer.student.load_state_dict(weights)
    # what it trained on ({split: fingerprint}), compared by bench.preflight.check_teacher
    data = {cfg.train.split: trainer.data[cfg.train.split]}
    path = save_teacher(teacher_path(cfg), trainer.student, cfg.teacher, cfg, row["metrics"], data)
    log.info(
        "teacher %s on %s: %s mIoU %.2f, saved to %s",
        cfg.teacher.name,
        cfg.dataset.name,
        row["split"],
        row["metrics"]["miou"],
        path,
    )
    return row


def main(overrides: list[str]) -> None:
    from bench.preflight import check_run_needs

    cfg = teacher_config(overrides)
    # the teacher network is the run's student here: its weights, its data, where it is stored
    check_run_needs(
        cfg,
        (cfg.train.split, cfg.eval.split),
        (cfg.output_dir, cfg.teachers_dir),
        teacher=False,
        role="teacher",
    )
    train_teacher(cfg)


def cli() -> None:
    run_cli(main, "teacher_run", USAGE)


if __name__ == "__main__":
    cli()
