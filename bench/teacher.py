"""Train a teacher and store it under its key: ``python -m bench.teacher dataset=... teacher=...``.

Two teachers per dataset and preset, trained under the same recipe (``--part``): the full-data
teacher (the whole training split; the finals use it) and the tuning teacher (the tuning-train part,
train minus the tuning hold-out; the tuning trials use it, so they are never scored on images whose
labels their teacher fitted). With ``tune.repeats=R`` each repeat's hold-out gets its own tuning
teacher. Each checkpoint records the images it was trained on (:mod:`bench.teacher_split`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bench.cli import run_cli

if TYPE_CHECKING:  # torch, Hydra and the trainer load inside the functions: --help answers at once
    from bench.config import RunConfig

log = logging.getLogger("bench")

USAGE = """usage: python -m bench.teacher [--cfg] [--part=both|full|tune] [dataset=...] [teacher=...]
       [key=value ...]

Trains the teacher preset with CE (+ aux CE) under conf/train/<dataset>_teacher.yaml and saves it to
<teachers_dir>/<dataset>/<teacher>.pt (full: the whole training split, for final runs) and
<teacher>.tune-h<holdout_size>-s<holdout_seed>.pt (tune: the training split minus the tuning hold-out,
for tuning trials; one per repeat with tune.repeats=R), where runs look them up. --part=both (the
default) trains both."""

PARTS = ("both", "full", "tune")


def teacher_config(overrides: list[str]) -> RunConfig:
    """The run config that trains the ``teacher`` preset as the network (method: baseline)."""
    from omegaconf import OmegaConf

    from bench.config import ModelConfig
    from bench.config.compose import compose_raw, validate

    raw = compose_raw(overrides, "teacher_run")
    network = {k: v for k, v in raw.teacher.items() if k != "checkpoint"}
    raw.student = OmegaConf.merge(OmegaConf.structured(ModelConfig), network)
    return validate(raw)


def split_part(args: list[str]) -> tuple[str, list[str]]:
    """``--part=both|full|tune`` taken out of the command line (default: both)."""
    from bench.errors import ConfigError

    part, rest = "both", []
    for a in args:
        if a == "--part" or a.startswith("--part="):
            part = a.partition("=")[2]
            if part not in PARTS:
                raise ConfigError(f"--part={part}: choose one of {', '.join(PARTS)} (e.g. --part=tune)")
        else:
            rest.append(a)
    return part, rest


def part_overrides(overrides: list[str], part: str) -> list[list[str]]:
    """The runs of ``part``: ``full`` the overrides as given; ``tune`` one per repeat of the study
    (``tune.repeats``, or only ``tune.repeat=r`` when given), each with ``train.split=tune_train``
    and that repeat's hold-out seed (the seed its studies tune with); ``both`` full, then tune."""
    from bench.config.compose import load_config
    from bench.config.overrides import Overrides
    from bench.tune.study import repeat_overrides

    runs = [list(overrides)] if part in ("both", "full") else []
    if part in ("both", "tune"):
        tune = load_config(overrides).tune
        repeats = [tune.repeat] if Overrides(overrides).has("tune.repeat") else range(tune.repeats)
        for r in repeats:
            seed = [o for o in repeat_overrides(overrides, r) if o.startswith("dataset.holdout_seed=")][-1]
            runs.append([*overrides, "train.split=tune_train", seed])
    return runs


def teacher_configs(overrides: list[str], part: str = "both") -> list[RunConfig]:
    """The run config of each teacher of ``part``; a tuning teacher's run folder is the full
    teacher's plus its part (``…/seed0/tune-h0.2-s0``), so neither resumes or overwrites the other."""
    from dataclasses import replace

    from bench.teachers import is_tune_part, tune_part_label

    out = []
    for o in part_overrides(overrides, part):
        cfg = teacher_config(o)
        if is_tune_part(cfg.train.split):
            cfg = replace(cfg, output_dir=f"{cfg.output_dir}/{tune_part_label(cfg)}")
        out.append(cfg)
    return out


def train_teacher(cfg: RunConfig) -> dict:
    """Train the teacher network of ``cfg`` and store it; returns the run's result row."""
    import torch

    from bench.engine.trainer import Trainer
    from bench.teacher_split import trained_on
    from bench.teachers import save_teacher, teacher_path

    trainer = Trainer(cfg, label=f"teacher {cfg.teacher.name}/seed{cfg.seed}")
    row = trainer.fit()
    if not trainer.dist.is_main:  # torchrun: rank 0 stores the teacher
        return row
    weights = torch.load(trainer.out / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    trainer.student.load_state_dict(weights)
    # what it trained on ({split: fingerprint}), compared by bench.preflight.check_teacher
    data = {cfg.train.split: trainer.data[cfg.train.split]}
    record = trained_on(cfg)  # and which training images: the tuning hold-out check (bench.teacher_split)
    path = save_teacher(teacher_path(cfg), trainer.student, cfg.teacher, cfg, row["metrics"], data, record)
    log.info(
        "teacher %s on %s (%s, %d of %d training images): %s mIoU %.2f, saved to %s",
        cfg.teacher.name,
        cfg.dataset.name,
        record["split"],
        len(trainer.train_set),
        record["train_images"],
        row["split"],
        row["metrics"]["miou"],
        path,
    )
    return row


def main(args: list[str]) -> None:
    from bench.preflight import check_run_needs

    part, overrides = split_part(args)
    configs = teacher_configs(overrides, part)
    for cfg in configs:  # every run's needs before the first trains
        # the teacher network is the run's student here: its weights, its data, where it is stored
        check_run_needs(
            cfg,
            (cfg.train.split, cfg.eval.split),
            (cfg.output_dir, cfg.teachers_dir),
            teacher=False,
            role="teacher",
        )
    for cfg in configs:
        train_teacher(cfg)


def cli() -> None:
    run_cli(main, "teacher_run", USAGE, flags=("--part",))


if __name__ == "__main__":
    cli()
