"""One training step, built in one place: what the trainer runs, ``make plan`` calibrates and
``make perf`` times.

:meth:`TrainingStep.build` turns a run config and its networks into the step's parts — the terms'
:class:`~bench.methods.TermContext` (:func:`term_context`: a new input of a loss term is added here,
once), the :class:`~bench.methods.Objective`, the frozen teacher, the optimizer with its learning-rate
groups (:func:`param_groups`: backbone, head × ``head_lr_mult``, the terms' own parameters), the
schedule and the fp16 grad scaler — and :meth:`TrainingStep.__call__` runs one optimisation step.
:func:`untrained_step` builds the same step on randomly initialised networks, for timing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from bench.config.schema import RunConfig
from bench.engine import distributed
from bench.engine.optim import build_optimizer, build_scheduler
from bench.methods import Objective, TermContext, needs_teacher
from bench.models import build_model
from bench.models.segmenter import Segmenter
from bench.teachers import FrozenTeacher

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def term_context(
    cfg: RunConfig,
    student: Segmenter,
    teacher: Segmenter | None,
    input_size: tuple[int, int],
    teacher_checkpoint: tuple[str, str] | None = None,
    cost_only: bool = False,
) -> TermContext:
    """What the loss terms are built from: classes, the networks' tap widths, the schedule length,
    the sizes of the training input and of the heads' feature maps, the teacher's checkpoint (path,
    SHA-256; terms with state trained on it, MasKD's tokens, look theirs up by it) and whether the
    networks are random ones built only to time the step (``cost_only``)."""
    stride = (teacher or student).head_stride
    return TermContext(
        num_classes=cfg.dataset.num_classes,
        ignore_index=cfg.dataset.ignore_index,
        student_channels=student.tap_channels(),
        teacher_channels=teacher.tap_channels() if teacher is not None else {},
        total_steps=cfg.train.iterations,
        aux_weight=cfg.train.aux_weight,
        ce_denominator=cfg.train.ce_denominator,
        batch_size=cfg.train.batch_size,
        input_size=tuple(input_size),
        feature_size=(input_size[0] // stride, input_size[1] // stride),
        teacher_checkpoint=teacher_checkpoint,
        cost_only=cost_only,
    )


def param_groups(cfg: RunConfig, student: Segmenter, objective: Objective) -> list[dict[str, Any]]:
    """The optimizer's groups: the student's backbone at the base learning rate, its head and the
    terms' own trainable parameters (adapters) at ``head_lr_mult`` times it; empty groups left out."""
    head = {id(p) for p in student.head_parameters()}
    mult = cfg.train.optimizer.head_lr_mult
    groups = [
        {"params": [p for p in student.parameters() if id(p) not in head], "lr_mult": 1.0},
        {"params": [p for p in student.parameters() if id(p) in head], "lr_mult": mult},
        {"params": objective.student_parameters(), "lr_mult": mult},
    ]
    return [g for g in groups if g["params"]]


@dataclass
class TrainingStep:
    """One optimisation step of a run and everything it updates (see the module docstring)."""

    cfg: RunConfig
    device: torch.device
    objective: Objective
    teacher: FrozenTeacher | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    forward: Callable[[torch.Tensor], Any]  # the student's training forward (DDP-wrapped, compiled)
    dist: distributed.DistContext = field(default_factory=distributed.DistContext)

    @classmethod
    def build(
        cls,
        cfg: RunConfig,
        student: Segmenter,
        teacher: Segmenter | None,
        device: torch.device,
        input_size: tuple[int, int],
        forward: nn.Module | None = None,
        dist: distributed.DistContext | None = None,
        teacher_checkpoint: tuple[str, str] | None = None,
        cost_only: bool = False,
    ) -> TrainingStep:
        """The step of ``cfg`` for these networks (on ``device`` already); ``forward`` defaults to the
        student itself (the trainer passes its DDP-wrapped or compiled module); the last two as in
        :func:`term_context`."""
        ctx = term_context(cfg, student, teacher, input_size, teacher_checkpoint, cost_only)
        objective = Objective(cfg.method, ctx).to(device)
        frozen = FrozenTeacher(teacher, objective.teacher_taps) if teacher is not None else None
        optimizer = build_optimizer(param_groups(cfg, student, objective), cfg.train.optimizer)
        t = cfg.train
        scheduler = build_scheduler(optimizer, t.schedule, t.iterations, t.optimizer.lr)
        scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
        return cls(
            cfg,
            device,
            objective,
            frozen,
            optimizer,
            scheduler,
            scaler,
            forward or student,
            dist or distributed.DistContext(),
        )

    @property
    def dtype(self) -> torch.dtype | None:
        return PRECISIONS[self.cfg.train.precision]

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        """One optimisation step on a batch; returns its loss terms (``objective.part_names``) on the
        device, without waiting for it."""
        t, dtype = self.cfg.train, self.dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            student = self.forward(images)
            teacher = self.teacher(images) if self.teacher is not None else None
            loss, parts = self.objective(student, teacher, labels, step)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        distributed.average_gradients(self.objective.student_parameters(), self.dist)
        if t.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], t.grad_clip
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.objective.after_step(student, teacher, labels, step)
        return parts


def untrained_step(cfg: RunConfig, device: torch.device, input_size: tuple[int, int]) -> TrainingStep:
    """The run's training step on networks with random weights (no checkpoint, nothing downloaded):
    what ``make plan`` calibrates and ``make perf`` times, built as the trainer builds its own."""
    n = cfg.dataset.num_classes
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    student = build_model(replace(cfg.student, encoder_weights=None), n, role="student").to(device)
    student.to(memory_format=fmt).train()
    teacher = None
    if needs_teacher(cfg):
        teacher = build_model(replace(cfg.teacher, encoder_weights=None), n, role="teacher").to(device)
        teacher.to(memory_format=fmt).eval().requires_grad_(False)
    forward = torch.compile(student) if cfg.train.compile else student
    # random networks: terms' trained state (MasKD tokens) is random of its shape
    return TrainingStep.build(cfg, student, teacher, device, input_size, forward, cost_only=True)
