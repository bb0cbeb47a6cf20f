"""DSD: Double Similarity Distillation (Feng et al., IEEE TIP 2021), as re-implemented in CIRKD."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, fp32
from bench.models.taps import Taps, upsample


@dataclass
class DSDConfig(TermConfig):
    psd_weight: float = 1000.0  # λ_psd, pixel-wise similarity (scripts/train_kd/train_dsd.sh)
    csd_weight: float = 10.0  # λ_csd, category-wise similarity
    temperature: float = 4.0  # τ of CSD's spatial softmax (CriterionCSD.tau)
    pool_size: int = 2  # CSD average pooling, kernel = stride, ceil mode (official 2×2)


def attention(feat: torch.Tensor) -> torch.Tensor:
    """AT map ``normalize(mean_c f²)`` over the flattened positions, ``[B, h·w]``."""
    return F.normalize(feat.float().pow(2).mean(1).flatten(1), dim=1)


def psd_loss(student_maps: list[torch.Tensor], teacher_maps: list[torch.Tensor]) -> torch.Tensor:
    """Pixel-wise similarity: residual attention maps ``r_mn = normalize(a_m − a_n)`` of every pair
    n < m of the maps, ``mean_pairs mean_{b,i} (r^s_mn − r^t_mn)²``. Maps of one net share h×w."""

    def residuals(maps: list[torch.Tensor]) -> torch.Tensor:  # [K, B, hw]
        a = torch.stack([attention(f) for f in maps])
        n, m = torch.triu_indices(len(maps), len(maps), offset=1, device=a.device)  # pairs n < m
        return F.normalize(a[m] - a[n], dim=2)

    r_s, r_t = residuals(student_maps), residuals([f.detach() for f in teacher_maps])
    return (r_s - r_t).pow(2).mean()


def csd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0, pool_size: int = 2
) -> torch.Tensor:
    """Category-wise similarity: ``P = σ(pool(z)/τ)`` over positions per class, Gram ``G = P Pᵀ``
    (C×C per image), ``mean_{b,c,c'} (G^s − G^t)²``."""

    def gram(z: torch.Tensor) -> torch.Tensor:
        if pool_size > 1:
            z = F.avg_pool2d(z, pool_size, stride=pool_size, ceil_mode=True)
        p = torch.softmax(z.float().flatten(2) / temperature, dim=2)
        return p @ p.transpose(1, 2)

    return (gram(student_logits.float()) - gram(teacher_logits.detach().float())).pow(2).mean()


@TERMS.register("dsd")
class DSD(LossTerm):
    """DSD: pixel-wise (PSD) and category-wise (CSD) similarity distillation.

    Formula: ``L = λ_psd·PSD + λ_csd·CSD``. PSD: on the maps (aux logits, ``feat``, main logits) — the
    CIRKD wiring ``[outputs[-2], outputs[-1], outputs[0]]`` — attention maps ``a = normalize_i(mean_c
    f²)``, residuals ``r_mn = normalize(a_m − a_n)`` for the 3 pairs n < m, ``PSD = mean_pairs
    mean_{b,i} (r^s − r^t)²``. CSD: main logits 2×2 average-pooled, per-class softmax over positions
    with τ = 4, ``G = P Pᵀ`` (C×C), ``CSD = mean_{b,c,c'} (G^s − G^t)²``. Paper: Feng et al., "Double
    Similarity Distillation for Semantic Image Segmentation", IEEE TIP 2021; no official code — this
    follows winycg/CIRKD ``losses/dsd.py`` and ``train_kd.py``. Reduction: CIRKD's element means, no
    conversion: λ_psd = 1000, λ_csd = 10 (``train_dsd.sh``; no KD term there). Without an aux head on
    both nets PSD uses (``feat``, main logits), one pair (CIRKD would put the main logits in the aux
    slot of a MobileNet student only). Every map is resized bilinearly to the teacher's ``feat`` size
    (student maps to the teacher's, as everywhere; aux heads at another stride too). Widths may
    differ (attention maps and Grams are D-free). Ignore pixels: not label based, every position
    counts. Batch composition: per-image quantities averaged, so independent. Minimum 0 when student
    equals teacher.
    """

    Config = DSDConfig
    requires = frozenset({"feat", "logits_low", "aux_logits"})
    uses_labels = False
    batch_decomposable = True

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        size = teacher.feat.shape[-2:]
        with fp32(student):
            s_maps = [student.feat, student.logits_low]
            t_maps = [teacher.feat, teacher.logits_low]
            if student.aux_logits is not None and teacher.aux_logits is not None:
                s_maps.insert(0, student.aux_logits)
                t_maps.insert(0, teacher.aux_logits)
            s_maps = [upsample(m.float(), size) for m in s_maps]
            t_maps = [upsample(m.float(), size) for m in t_maps]
            psd = psd_loss(s_maps, t_maps)
            csd = csd_loss(s_maps[-1], t_maps[-1], self.cfg.temperature, self.cfg.pool_size)
            return self.cfg.psd_weight * psd + self.cfg.csd_weight * csd
