"""The KD loss-term interface.

A term is an ``nn.Module`` registered in :data:`bench.methods.TERMS`. It declares the taps it reads
(:attr:`LossTerm.requires`), may own trainable parameters (adapters), which join the student's
optimizer, and returns one unweighted scalar; the :class:`~bench.methods.objective.Objective` applies
the weight from the method config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.models.taps import Taps, upsample


@dataclass
class TermContext:
    """What a term may need to size itself.

    Attributes:
        num_classes, ignore_index: of the dataset.
        student_channels, teacher_channels: ``Segmenter.tap_channels()`` of each network (widths of
            ``feat``, ``logits``, ``aux_logits`` and ``stages``); empty when unknown.
        total_steps: the run's iterations (for terms that change behaviour over training).
        aux_weight: the task loss's aux-head weight (for terms that replace the task loss).
        ce_denominator: the task CE's divisor, ``valid`` or ``all`` pixels (``train.ce_denominator``).
        batch_size: images per training step.
        input_size: ``(H, W)`` of training inputs.
        feature_size: ``(h, w)`` of ``feat``/``logits_low`` at the training size — the teacher's when
            there is one (student maps are resized to it), else the student's.
        teacher_checkpoint: ``(path, sha256)`` of the run's teacher checkpoint, for terms whose
            trained state belongs to one teacher (MasKD's tokens); None when no checkpoint is loaded.
        cost_only: built to measure cost (``make plan``, ``make perf-kd``) on random networks: a term
            whose trained state comes from a file may use random state of the same shape instead.
    """

    num_classes: int
    ignore_index: int = 255
    student_channels: dict[str, Any] = field(default_factory=dict)
    teacher_channels: dict[str, Any] = field(default_factory=dict)
    total_steps: int = 1
    aux_weight: float = 0.4
    ce_denominator: str = "valid"
    batch_size: int = 1
    input_size: tuple[int, int] | None = None
    feature_size: tuple[int, int] | None = None
    teacher_checkpoint: tuple[str, str] | None = None
    cost_only: bool = False


class LossTerm(nn.Module):
    """Base class of a KD loss term.

    Subclasses set :attr:`Config` (a :class:`TermConfig` subclass holding their hyper-parameters),
    :attr:`requires` and implement :meth:`forward`. Loss math runs in fp32 with autocast disabled:
    wrap the body in ``with fp32(student):`` and call ``.float()`` on the inputs.

    Optional hooks:

    - :meth:`student_parameters`: parameters trained by the student's optimizer (default: all of the
      term's parameters, i.e. its adapters). A term with a network of its own (a discriminator)
      returns only the student-side ones and trains the rest in :meth:`after_step`.
    - :meth:`after_step`: called after each student optimizer step, outside autograd of that step.
      State a term keeps outside its parameters/buffers (an optimizer) goes through
      ``get_extra_state``/``set_extra_state`` so that checkpoints include it.
    - :attr:`replaces_task_loss`: the term returns the whole task loss (CE on main and aux heads,
      re-weighted or masked) instead of adding to the plain CE, which is then left out.
    - :meth:`estimate_memory_mb`: extra memory at the training size; a run whose estimate exceeds
      ``method.memory_limit_mb`` stops at start with the term's name.

    Contract, checked for every registered term by ``tests/methods/test_contract.py``: the gradient
    reaches only the student's taps (and the term's student parameters), the value is an fp32 scalar
    under autocast, and each term declares

    - :attr:`identical_value`: its value when the student's taps equal the teacher's (after any
      warm-up stage), or None when there is no such minimum (a randomly initialised adapter or
      projection between the two, an adversarial critic's score);
    - :attr:`batch_decomposable`: whether its value on a batch is the mean of its values on
      equal-size parts of it (equal numbers of valid pixels); False when pairs, statistics or
      quantiles span the batch. A property where it depends on the config;
    - :attr:`uses_labels`: False when the value is the same whatever the labels (ignore pixels too).
    """

    Config: ClassVar[type[TermConfig]] = TermConfig
    # Taps read from student and teacher: any of stages, feat, logits_low, logits, aux_logits.
    requires: ClassVar[frozenset[str]] = frozenset({"logits_low"})
    needs_teacher: ClassVar[bool] = True
    replaces_task_loss: ClassVar[bool] = False
    identical_value: ClassVar[float | None] = 0.0
    batch_decomposable: ClassVar[bool] = False
    uses_labels: ClassVar[bool] = True

    def __init__(self, cfg: TermConfig, ctx: TermContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.ctx = ctx

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def student_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def after_step(self, student: Taps, teacher: Taps | None, labels: torch.Tensor, step: int) -> None:
        """Update state of the term's own after the student's step (default: nothing)."""

    def estimate_memory_mb(self) -> float | None:
        """Peak extra memory of forward + backward at the context's sizes, or None if negligible."""
        return None


def fp32(taps: Taps) -> torch.autocast:
    """A context that disables autocast on the taps' device, for fp32 loss math under AMP."""
    return torch.autocast(device_type=taps.logits_low.device.type, enabled=False)


def aligned(student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The project's alignment rule for a student/teacher pair of maps, in fp32.

    The student map is bilinearly resized to the teacher's spatial size (never the other way round;
    docs/5_methods.md §2); channel widths are left to the term's adapter.
    """
    return upsample(student.float(), teacher.shape[-2:]), teacher.float()


def labels_to(labels: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Nearest-neighbour resize of ``[B, H, W]`` labels to ``size`` (the rule for feature-size masks)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()
