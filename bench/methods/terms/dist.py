"""DIST: inter- and intra-class relation distillation (Huang et al., NeurIPS 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, aligned, fp32, labels_to
from bench.models.taps import Taps

EPS = 1e-8  # the official cosine denominator epsilon


@dataclass
class DISTConfig(TermConfig):
    beta: float = 1.0  # weight of the inter-class (per-pixel) relation
    gamma: float = 1.0  # weight of the intra-class (per-class, batch-wide) relation
    # Softmax temperature; the loss is scaled by T² as in the paper. The segmentation code uses T = 1.
    temperature: float = 1.0
    # Factor of the same loss on the aux heads, added when both nets have one (official: 0.4, the
    # literature's aux CE weight, hard-coded in DIST's train_kd.py). 0 disables the aux part.
    aux_weight: float = 0.4
    # Leave ignore pixels (nearest-resized labels) out of both relations. Off = official behaviour.
    mask_ignore: bool = False


def _pearson(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, dim: int) -> torch.Tensor:
    """Pearson correlation of ``x`` and ``y`` along ``dim``, over the entries where ``w`` is 1.

    ``cos(x − x̄, y − ȳ)`` with the official ``+1e-8`` in the denominator; ``w`` (0/1, broadcastable)
    restricts both the means and the sums. Returns the correlations with ``dim`` reduced.
    """
    n = w.expand_as(x).sum(dim, keepdim=True).clamp(min=1)
    a = (x - (x * w).sum(dim, keepdim=True) / n) * w
    b = (y - (y * w).sum(dim, keepdim=True) / n) * w
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + EPS)


def _pearson_plain(x: torch.Tensor, y: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Pearson correlation of ``x`` and ``y`` along ``dim`` (every entry), the official formula."""
    a = x - x.mean(dim, keepdim=True)
    b = y - y.mean(dim, keepdim=True)
    norm = torch.linalg.vector_norm
    return (a * b).sum(dim) / (norm(a, dim=dim) * norm(b, dim=dim) + EPS)


def dist_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``T² · [β·(1 − mean_n ρ(P^s_n,:, P^t_n,:)) + γ·(1 − mean_c ρ(P^s_:,c, P^t_:,c))]``.

    ``P = σ(z/T)`` over classes, flattened to ``[N, C]`` over every pixel of the batch (``[B, C, h,
    w]`` logits); ρ is the Pearson correlation. The inter-class term averages over the N pixels; the
    intra-class term correlates each class column across *all N pixels of the batch* and averages
    over the C classes, so it depends on which images share a batch. ``mask`` (``[B, h, w]``, 1 =
    use) restricts both to the valid pixels. fp32; the teacher is detached. Without a mask the
    probabilities stay in their ``[B, C, h·w]`` layout (no transposed copy, no weights).
    """
    c = student_logits.shape[1]
    if mask is None:
        p_s = torch.softmax(student_logits.float() / temperature, dim=1).flatten(2)  # [B, C, hw]
        p_t = torch.softmax(teacher_logits.detach().float() / temperature, dim=1).flatten(2)
        inter = 1 - _pearson_plain(p_s, p_t, 1).mean()
        intra = 1 - _pearson_plain(p_s, p_t, (0, 2)).mean()
        return temperature**2 * (beta * inter + gamma * intra)
    p_s = torch.softmax(student_logits.float() / temperature, dim=1).movedim(1, -1).reshape(-1, c)
    p_t = torch.softmax(teacher_logits.detach().float() / temperature, dim=1).movedim(1, -1).reshape(-1, c)
    w = mask.reshape(-1, 1).to(p_s.dtype)
    inter_rho = _pearson(p_s, p_t, p_s.new_ones(1, 1), dim=1)  # [N]
    inter = 1 - (inter_rho * w[:, 0]).sum() / w.sum().clamp(min=1)
    intra = 1 - _pearson(p_s, p_t, w, dim=0).mean()  # [C] → mean over classes
    return temperature**2 * (beta * inter + gamma * intra)


@TERMS.register("dist")
class DIST(LossTerm):
    """DIST: Pearson-correlation relations between student and teacher class probabilities.

    Formula: with ``P = σ(z/T)`` as ``[N, C]`` (N = all pixels of the batch) and ρ the Pearson
    correlation, ``L = T²·[β·(1 − (1/N) Σ_n ρ(P^s_n,:, P^t_n,:)) + γ·(1 − (1/C) Σ_c ρ(P^s_:,c, P^t_:,c))]``
    on the native-resolution logits, plus ``aux_weight ·`` the same on the aux heads when both nets
    have one (official: 0.4). Paper: Huang et al., "Knowledge Distillation from A Stronger Teacher",
    NeurIPS 2022 (segmentation code: hunto/DIST_KD ``segmentation/losses/dist_kd.py``, ``train_kd.py``).
    Reduction: means over pixels and classes as in the official code, so no conversion: β = γ = 1,
    T = 1, weight 1. Batch composition: the intra-class term pools every pixel of the batch per class,
    so its value depends on which images share a step (and, in the official multi-GPU runs, on the
    per-GPU batch of 2); the inter-class term does not. Ignore pixels: distilled like every other
    (official); ``mask_ignore=true`` drops them from both terms. Minimum: ≈0 (exactly ``1 − ‖a‖²/(‖a‖² +
    1e-8)`` per relation) when student equals teacher; a class column constant over the batch has ρ = 0.
    Student maps of another size are bilinearly resized to the teacher's.
    """

    Config = DISTConfig
    requires = frozenset({"logits_low", "aux_logits"})

    @property
    def batch_decomposable(self) -> bool:  # type: ignore[override]
        return self.cfg.gamma == 0  # the intra-class relation correlates each class over the batch

    def _pair(self, s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        s, t = aligned(s, t)
        mask = None
        if self.cfg.mask_ignore and labels is not None:
            mask = labels_to(labels, t.shape[-2:]) != self.ctx.ignore_index
        return dist_loss(s, t, self.cfg.beta, self.cfg.gamma, self.cfg.temperature, mask)

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            loss = self._pair(student.logits_low, teacher.logits_low, labels)
            aux_s, aux_t = student.aux_logits, teacher.aux_logits
            if self.cfg.aux_weight > 0 and aux_s is not None and aux_t is not None:
                loss = loss + self.cfg.aux_weight * self._pair(aux_s, aux_t, labels)
            return loss
