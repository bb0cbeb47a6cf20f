"""One training-step builder: the trainer, ``make plan``'s calibration and ``make perf`` build the
same step (loss terms, their context, optimizer groups, schedule, grad scaler) for one config."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from bench.engine.step import TrainingStep
from bench.engine.trainer import Trainer
from bench.models import build_model
from bench.perf import kd as perf_kd
from bench.plan import Calibration
from tests.conftest import tiny_config


def signature(step: TrainingStep) -> dict[str, Any]:
    obj = step.objective
    return {
        "parts": obj.part_names,
        "terms": {k: (type(t).__name__, t.cfg) for k, t in obj.terms.items()},
        # where a trained term state comes from: the trainer's teacher file, random state for timing
        "context": replace(obj.ctx, teacher_checkpoint=None, cost_only=False),
        "teacher_taps": sorted(step.teacher.taps) if step.teacher is not None else None,
        "optimizer": type(step.optimizer).__name__,
        "groups": [
            (
                [tuple(p.shape) for p in g["params"]],
                g["lr"],
                g.get("momentum"),
                g["weight_decay"],
            )
            for g in step.optimizer.param_groups
        ],
        "schedule": (type(step.scheduler).__name__, step.scheduler.get_last_lr()),
        "scaler": step.scaler.is_enabled(),
    }


def test_trainer_plan_and_perf_build_the_same_step(tmp_path, teachers_dir):
    cfg = tiny_config(
        tmp_path,
        "method=cwd_feat",  # a term with a trainable adapter: its own optimizer group
        "train.optimizer.head_lr_mult=10",
        "train.precision=fp16",  # the grad scaler is on
        f"teachers_dir={teachers_dir}",
    )
    trainer = Trainer(cfg).training_step
    calibrated = Calibration().training_step(cfg)

    stride = build_model(cfg.student, cfg.dataset.num_classes).head_stride
    h, w = cfg.dataset.image_size
    settings = perf_kd.Settings(
        device=torch.device("cpu"),
        batch=cfg.train.batch_size,
        classes=cfg.dataset.num_classes,
        size=(h // stride, w // stride),
        student_channels=0,
        teacher_channels=0,
        repeats=1,
        student_repeats=1,
        min_seconds=0.0,
        warmup=0,
        memory_limit_mb=0.0,
    )
    timed = perf_kd.student_step(settings, cfg)

    reference = signature(trainer)
    assert len(reference["groups"]) == 3  # backbone, head × 10, the adapter × 10
    assert reference["groups"][1][1] == 10 * reference["groups"][0][1]
    assert reference["scaler"] and reference["teacher_taps"]
    assert signature(calibrated) == reference
    assert signature(timed) == reference
    assert trainer.objective.ctx.teacher_checkpoint is not None and not trainer.objective.ctx.cost_only
    assert calibrated.objective.ctx.cost_only and timed.objective.ctx.cost_only


def test_the_step_the_plan_times_trains_like_the_trainers(tmp_path, teachers_dir):
    """Same config, same seed, same batch: the calibrated step's losses are the trainer's (before the
    builder, the plan's step had its own SGD at lr 1e-6 over one group)."""
    cfg = tiny_config(tmp_path, "method=kd", f"teachers_dir={teachers_dir}")
    trainer = Trainer(cfg)
    calibrated = Calibration().training_step(cfg)
    calibrated.forward.load_state_dict(trainer.student.state_dict())
    calibrated.teacher.model.load_state_dict(trainer.teacher.model.state_dict())
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, cfg.dataset.num_classes, (4, 32, 32))
    for step in range(3):
        torch.manual_seed(step)  # the same dropout masks
        ours = trainer.train_step(images, labels, step)
        torch.manual_seed(step)
        torch.testing.assert_close(calibrated(images, labels, step), ours)
