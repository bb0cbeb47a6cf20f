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
from bench.models.taps import Taps


@dataclass
class TermContext:
    """What a term may need to size itself: classes, ignore value, tap widths, schedule length."""

    num_classes: int
    ignore_index: int = 255
    student_channels: dict[str, Any] = field(default_factory=dict)  # Segmenter.tap_channels()
    teacher_channels: dict[str, Any] = field(default_factory=dict)
    total_steps: int = 1


class LossTerm(nn.Module):
    """Base class of a KD loss term.

    Subclasses set :attr:`Config` (a :class:`TermConfig` subclass holding their hyper-parameters),
    :attr:`requires` and implement :meth:`forward`. Loss math runs in fp32 with autocast disabled:
    wrap the body in ``with fp32(student):`` and call ``.float()`` on the inputs.
    """

    Config: ClassVar[type[TermConfig]] = TermConfig
    # Taps read from student and teacher: any of stages, feat, logits_low, logits, aux_logits.
    requires: ClassVar[frozenset[str]] = frozenset({"logits_low"})
    needs_teacher: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = False

    def __init__(self, cfg: TermConfig, ctx: TermContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.ctx = ctx

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def fp32(taps: Taps) -> torch.autocast:
    """A context that disables autocast on the taps' device, for fp32 loss math under AMP."""
    return torch.autocast(device_type=taps.logits_low.device.type, enabled=False)


def labels_to(labels: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Nearest-neighbour resize of ``[B, H, W]`` labels to ``size`` (the rule for feature-size masks)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()
