"""The training objective: the task loss every method shares plus the method's KD terms.

``L = s_task(t) · [CE(main) + aux_weight · CE(aux)] + Σ_k weight_k · s_k(t) · term_k``

``s`` are optional weight schedules (constant 1 unless a method config sets one). The baseline and a
KD method differ only in the terms: same CE, same aux weight, same optimizer. A term that replaces
the task loss (e.g. RDD's re-weighted CE) takes the place of the two CE parts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import MethodConfig, WeightScheduleConfig
from bench.errors import ConfigError, MemoryLimitError
from bench.methods.base import TermContext
from bench.models.taps import Taps, upsample

SCHEDULE_SHAPES = ("constant", "linear", "stairs")


def cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int,
    align_corners: bool = False,
    denominator: str = "valid",
) -> torch.Tensor:
    """CE summed over valid pixels in fp32, divided by the valid pixels (``valid``: PyTorch's and
    CIRKD's mean; 0, not NaN, without any) or by all pixels (``all``: mmseg's default
    ``avg_non_ignore=False``). Logits are resized to the labels as the network's codebase does."""
    logits = upsample(logits.float(), labels.shape[-2:], align_corners)
    total = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    if denominator == "all":
        return total / labels.numel()
    return total / (labels != ignore_index).sum().clamp(min=1)


def schedule_multiplier(schedule: WeightScheduleConfig | None, step: int, total_steps: int) -> float:
    """The weight multiplier of ``schedule`` at ``step`` (see :class:`WeightScheduleConfig`)."""
    if schedule is None:
        return 1.0
    if schedule.shape == "constant":
        return schedule.start
    progress = min(step / max(total_steps, 1), 1.0)
    if schedule.shape == "stairs":
        progress = math.floor(progress * schedule.stages) / schedule.stages
    return schedule.start + (schedule.end - schedule.start) * progress


class Objective(nn.Module):
    """Task loss + weighted KD terms; holds the terms' trainable parameters (adapters)."""

    def __init__(self, method: MethodConfig, ctx: TermContext) -> None:
        from bench.methods.registry import TERMS

        super().__init__()
        self.method = method
        self.ctx = ctx
        self.terms = nn.ModuleDict()
        for key, cfg in method.terms.items():
            self.terms[key] = TERMS.get(cfg.term or key)(cfg, ctx)
        replacing = [k for k, t in self.terms.items() if t.replaces_task_loss]
        if len(replacing) > 1:
            raise ConfigError(
                f"method '{method.name}': terms {replacing} all replace the task loss; keep one"
            )
        self.task_term = replacing[0] if replacing else None
        for schedule in [method.task_schedule] + [t.cfg.schedule for t in self.terms.values()]:
            if schedule is not None and schedule.shape not in SCHEDULE_SHAPES:
                raise ConfigError(f"schedule shape '{schedule.shape}'; valid: {', '.join(SCHEDULE_SHAPES)}")
        self._check_memory()

    def _check_memory(self) -> None:
        for key, term in self.terms.items():
            estimate = term.estimate_memory_mb()
            if estimate is not None and estimate > self.method.memory_limit_mb:
                raise MemoryLimitError(
                    f"term '{key}' needs about {estimate:.0f} MB at batch {self.ctx.batch_size} and "
                    f"features {self.ctx.feature_size}, above method.memory_limit_mb="
                    f"{self.method.memory_limit_mb:.0f}; pool or subsample more (see the term's options), "
                    "lower the batch or crop, or raise the limit",
                    term=key,
                )

    def student_parameters(self) -> list[nn.Parameter]:
        """Parameters the student's optimizer trains: every term's adapters."""
        return [p for t in self.terms.values() for p in t.student_parameters()]

    def after_step(self, student: Taps, teacher: Taps | None, labels: torch.Tensor, step: int) -> None:
        for term in self.terms.values():
            term.after_step(student, teacher, labels, step)

    @property
    def needs_teacher(self) -> bool:
        return any(t.needs_teacher for t in self.terms.values())

    @property
    def teacher_taps(self) -> set[str]:
        """The union of taps the terms read from the teacher."""
        return set().union(*(t.requires for t in self.terms.values()))

    @property
    def part_names(self) -> list[str]:
        return ["ce", "ce_aux", *self.terms.keys()]

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the total loss and the weighted parts, stacked in :attr:`part_names` order."""
        total = self.ctx.total_steps
        task = schedule_multiplier(self.method.task_schedule, step, total)
        ce = ce_aux = student.logits_low.new_zeros((), dtype=torch.float32)
        if self.task_term is None:
            ignore = self.ctx.ignore_index
            norm = self.ctx.ce_denominator
            ce = task * cross_entropy(student.logits, labels, ignore, denominator=norm)
            if student.aux_logits is not None and self.ctx.aux_weight > 0:
                aux = cross_entropy(student.aux_logits, labels, ignore, student.align_corners, norm)
                ce_aux = task * self.ctx.aux_weight * aux
        parts = [ce, ce_aux]
        for key, term in self.terms.items():
            weight = term.cfg.weight * schedule_multiplier(term.cfg.schedule, step, total)
            if key == self.task_term:
                weight *= task
            parts.append(weight * term(student, teacher, labels, step).float())
        stacked = torch.stack(parts)
        return stacked.sum(), stacked.detach()
