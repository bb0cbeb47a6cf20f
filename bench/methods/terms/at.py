"""Attention transfer on the penultimate feature (Zagoruyko & Komodakis, ICLR 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, aligned, fp32
from bench.models.taps import Taps


@dataclass
class ATConfig(TermConfig):
    pass


def attention_map(feat: torch.Tensor) -> torch.Tensor:
    """``a(f)_b = vec(mean_d f²_{b,d,:}) / ‖·‖₂``: ``[B, h·w]``, unit L2 norm per image."""
    return F.normalize(feat.pow(2).mean(dim=1).flatten(1), dim=1)


def at_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
    """``mean_{b,i} (a(f^s)_{b,i} − a(f^t)_{b,i})²`` on ``[B, D, h, w]`` features. fp32."""
    a_s = attention_map(student_feat.float())
    a_t = attention_map(teacher_feat.detach().float())
    return F.mse_loss(a_s, a_t)


@TERMS.register("at")
class AT(LossTerm):
    """Match the spatial attention maps (channel-mean of squared activations) of the two nets.

    Formula: ``a(f)_b = vec(mean_d f²_{b,d,:}) / ‖vec(mean_d f²_{b,d,:})‖₂`` (length h·w),
    ``L = (1/(B·h·w)) Σ_{b,i} (a(f^s)_{b,i} − a(f^t)_{b,i})²`` on the penultimate feature. Paper:
    Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017; segmentation form of CIRKD
    ``losses/at.py`` (p = 2, post-ASPP feature). Reduction: element mean over B·h·w as CIRKD, so no
    conversion; default weight 10⁴ (CIRKD ``train_at.sh``) — each map has unit norm, so its entries
    are ≈1/√(h·w) and the loss is tiny. Ignore pixels: not label-based; every position is used
    (CIRKD). Batch composition: maps are normalised per image, so the value does not depend on which
    images share a batch. Minimum 0 when the maps agree (e.g. equal features, or features that differ
    by a per-image scale). No adapter (the channel mean removes D); a student map of another size is
    bilinearly resized to the teacher's.
    """

    Config = ATConfig
    requires = frozenset({"feat"})
    uses_labels = False
    batch_decomposable = True

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            return at_loss(*aligned(student.feat, teacher.feat))
