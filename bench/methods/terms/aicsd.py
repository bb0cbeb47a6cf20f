"""AICSD's Inter-Class Similarity Distillation (Mansourian, Ahmadi, Kasaei; arXiv 2308.04243, 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, fp32
from bench.models.taps import Taps, upsample


@dataclass
class AICSDConfig(TermConfig):
    temperature: float = 1.0  # of the spatial softmax (the released code's self.temperature)
    # Reproduce the released code (AICSD@f99949e distiller.py) instead of the paper's definition:
    # softmax over the height axis only, probabilities fed to KLDivLoss as its input, the upper
    # triangle mirrored, one matrix per batch (batchmean) and the loss divided by B. For comparison.
    as_released: bool = False
    # Compare logits upsampled to the input size (the released DeepLabV3+ output) instead of the
    # native-resolution logits_low.
    at_input_size: bool = False


def icsd_matrices(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per image, ``M[c, c'] = KL(q_c ‖ q_c')`` with ``q_c = σ(z_c/T)`` over all spatial positions.

    ``[B, C, h, w]`` logits → ``[B, C, C]``, every entry (KL is asymmetric), any C, with log-softmax:
    ``KL(q_c ‖ q_c') = Σ_i q_ci log q_ci − Σ_i q_ci log q_c'i`` as one batched matmul.
    """
    log_q = F.log_softmax(logits.float().flatten(2) / temperature, dim=2)  # [B, C, hw]
    q = log_q.exp()
    neg_entropy = (q * log_q).sum(2)  # [B, C]
    return neg_entropy[:, :, None] - q @ log_q.transpose(1, 2)


def icsd_matrix_as_released(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The released code's ``[C, C]`` matrix, vectorised (it loops over the upper triangle).

    ``q = σ(z/T)`` over dim 2 of ``[B, C, H, W]`` (each column a distribution); entry ``(i, j)``, i ≤ j,
    is ``KLDivLoss(reduction='batchmean')(q_i, q_j) = (1/B) Σ q_j (log q_j − q_i)`` — probabilities
    where log-probabilities belong — and ``(j, i)`` mirrors it.
    """
    b = logits.shape[0]
    q = F.softmax(logits.float() / temperature, dim=2).transpose(0, 1).flatten(1)  # [C, B·H·W]
    neg_entropy = torch.special.xlogy(q, q).sum(1)  # Σ q_j log q_j (0·log 0 = 0 as in KLDivLoss)
    upper = torch.triu((neg_entropy[None, :] - q @ q.T) / b)
    return upper + torch.triu(upper, diagonal=1).T


def icsd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    as_released: bool = False,
) -> torch.Tensor:
    """``mean_{b,c,c'} (M̂^s − M̂^t)²`` with rows of M L2-normalised (paper); see :class:`AICSD`.

    ``as_released``: ``mean_{c,c'} (M̂^s − M̂^t)² / B`` on :func:`icsd_matrix_as_released`.
    """
    if as_released:
        m_s = F.normalize(icsd_matrix_as_released(student_logits, temperature), dim=1)
        m_t = F.normalize(icsd_matrix_as_released(teacher_logits.detach(), temperature), dim=1)
        return (m_s - m_t).pow(2).mean() / student_logits.shape[0]
    m_s = F.normalize(icsd_matrices(student_logits, temperature), dim=2)
    m_t = F.normalize(icsd_matrices(teacher_logits.detach(), temperature), dim=2)
    return (m_s - m_t).pow(2).mean()


@TERMS.register("aicsd")
class AICSD(LossTerm):
    """ICSD: inter-class similarity matrices of spatial class distributions, student vs teacher.

    Formula (paper): per image, ``q_c = σ(z_c/T)`` over all h·w positions of class c's logit map;
    ``M_{cc'} = KL(q_c ‖ q_c')`` (C×C, all entries); rows L2-normalised, ``M̂``;
    ``L = (1/(B·C²)) Σ_b Σ_{c,c'} (M̂^s_{b,cc'} − M̂^t_{b,cc'})²``. Paper: Mansourian, Ahmadi, Kasaei,
    "AICSD: Adaptive Inter-Class Similarity Distillation for Semantic Segmentation" (arXiv
    2308.04243, 2023; AmirMansurian/AICSD ``distiller.py``). Its Adaptive Loss Weighting is a weight
    schedule, not part of this term: ``conf/method/aicsd.yaml`` expresses it with ``stairs`` schedules.
    Reduction: mean over images and C² entries, one matrix per image (so independent of the batch
    composition). Conversion: the released loss is ``λ·mean(...)/B`` next to a CE also divided by B
    (pytorch-deeplab-xception ``batch_average``); multiplying the objective by B gives a standard
    mean CE + ``λ·mean(...)``, so the weight is the released λ (≈9500, AICSD README; docs/5_methods.md §5).
    ``as_released=true`` reproduces the released code instead (softmax over the height axis only,
    probabilities as KLDivLoss input, upper triangle mirrored, one batchmean matrix per batch, ``/B``;
    any C rather than its hard-coded 21). Its value is the released loss without λ; next to a
    standard mean CE the released objective needs weight ``B·λ``. Resolution: native-resolution
    logits (student resized to the teacher's); ``at_input_size=true`` upsamples both to the input size
    as the released DeepLabV3+ output is. Ignore pixels: no label is used; every position, including
    ignore and padding, is in the spatial softmax (official). Minimum 0 when student equals teacher.
    """

    Config = AICSDConfig
    requires = frozenset({"logits_low"})
    uses_labels = False

    @property
    def batch_decomposable(self) -> bool:  # type: ignore[override]
        return not self.cfg.as_released  # released: one matrix over the batch, divided by B

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        t = teacher.logits_low
        size = student.size if self.cfg.at_input_size and student.size else t.shape[-2:]
        with fp32(student):
            s = upsample(student.logits_low.float(), size)
            t = upsample(t.float(), size)
            return icsd_loss(s, t, self.cfg.temperature, self.cfg.as_released)
