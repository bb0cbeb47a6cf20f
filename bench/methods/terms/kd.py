"""Pixel-wise logit distillation (Hinton et al., 2015; used per pixel by SKD, CVPR 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, aligned, fp32, labels_to
from bench.models.taps import Taps


@dataclass
class KDConfig(TermConfig):
    temperature: float = 1.0
    # Distil only pixels whose (nearest-resized) label is not ignore. Off = official behaviour:
    # every position, including ignore and padding, is distilled.
    mask_ignore: bool = False


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``T² · (1/N) Σ_{b,i} KL(σ(z^t_{b,:,i}/T) ‖ σ(z^s_{b,:,i}/T))`` on ``[B, C, h, w]`` logits.

    KL is summed over classes and averaged over the N pixels (or over the pixels where ``mask`` is
    true) — the CIRKD "batchmean per pixel" reduction, not PyTorch's ``KLDivLoss()`` default, which
    also divides by C. Computed with log-softmax in fp32; the teacher is detached.
    """
    log_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=1)
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(dim=1)  # [B, h, w]
    if mask is None:
        return kl.mean() * temperature**2
    return (kl * mask).sum() / mask.sum().clamp(min=1) * temperature**2


@TERMS.register("kd")
class KD(LossTerm):
    """Pixel-wise KL(teacher ‖ student) with temperature T and T² scaling.

    Formula: ``L = T² · (1/N) Σ_{b,i} KL(σ(z^t_i/T) ‖ σ(z^s_i/T))`` on the native-resolution logits
    (1/8 for OS8 models); if the student's logits are smaller or larger, they are bilinearly resized to
    the teacher's. Paper: Hinton et al., "Distilling the Knowledge in a Neural Network" (2015); pixel
    form from Liu et al., "Structured Knowledge Distillation for Semantic Segmentation" (CVPR 2019).
    Reduction: sum over classes, mean over pixels (CIRKD convention; official CIRKD default T=1,
    weight 1). Ignore pixels: distilled like every other (official); ``mask_ignore=true`` excludes
    them.
    """

    Config = KDConfig
    requires = frozenset({"logits_low"})
    batch_decomposable = True

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            s, t = aligned(student.logits_low, teacher.logits_low)
            mask = None
            if self.cfg.mask_ignore and labels is not None:
                mask = (labels_to(labels, t.shape[-2:]) != self.ctx.ignore_index).float()
            return kd_loss(s, t, self.cfg.temperature, mask)
