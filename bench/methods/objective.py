"""The training objective: the task loss every method shares plus the method's KD terms.

``L = CE(main) + aux_weight · CE(aux) + Σ_k weight_k · term_k``

The baseline and a KD method differ only in the terms: same CE, same aux weight, same optimizer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import MethodConfig
from bench.methods.base import TermContext
from bench.models.taps import Taps, upsample


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Mean CE over valid pixels, in fp32; 0 (not NaN) when a batch has no valid pixel."""
    logits = upsample(logits.float(), labels.shape[-2:])
    total = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    return total / (labels != ignore_index).sum().clamp(min=1)


class Objective(nn.Module):
    """Task loss + weighted KD terms; holds the terms' trainable parameters (adapters)."""

    def __init__(self, method: MethodConfig, ctx: TermContext, aux_weight: float) -> None:
        from bench.methods import TERMS

        super().__init__()
        self.method_name = method.name
        self.ctx = ctx
        self.aux_weight = aux_weight
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for key, cfg in method.terms.items():
            self.terms[key] = TERMS.get(cfg.term or key)(cfg, ctx)
            self.weights[key] = cfg.weight

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
        ignore = self.ctx.ignore_index
        parts = [cross_entropy(student.logits, labels, ignore)]
        if student.aux_logits is not None and self.aux_weight > 0:
            parts.append(self.aux_weight * cross_entropy(student.aux_logits, labels, ignore))
        else:
            parts.append(parts[0].new_zeros(()))
        for key, term in self.terms.items():
            parts.append(self.weights[key] * term(student, teacher, labels, step).float())
        stacked = torch.stack(parts)
        return stacked.sum(), stacked.detach()
