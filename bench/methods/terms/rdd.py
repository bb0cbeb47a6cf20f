"""RDD: Relative Difficulty Distillation (Liang, Sun, Du, Chen, Huang; arXiv 2407.03719, 2024)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, fp32
from bench.models.taps import Taps, upsample

# Typed keys: composition refuses other values (``or``/``and`` are keywords, hence the functional form).
MaskMode = StrEnum("MaskMode", [(m, m) for m in ("xor", "or", "and", "ohem")])
MaskMode.__doc__ = "``rdd.mask_mode``: which OHEM-hard pixels the TSE stage keeps."


class Switch(StrEnum):
    """``rdd.switch``: TFE → TSE at the warm-up's end, or a linear blend after it."""

    hard = "hard"
    linear = "linear"


@dataclass
class RDDConfig(TermConfig):
    # Warm-up W: TFE-RDD for steps < W, TSE-RDD after. A value < 1 is a fraction of train.iterations,
    # ≥ 1 an iteration count. Official scripts: 4,000 of 40,000 iterations → 0.1.
    warmup: float = 0.1
    threshold: float = 0.7  # θ: a pixel is hard when its ground-truth probability is ≤ θ (--ohem_thresh)
    # OHEM min_kept: θ is raised to the min_kept-th smallest ground-truth probability of the batch. A
    # value < 1 is a fraction of the batch's label pixels, ≥ 1 a pixel count. Official: 100,000 per
    # GPU batch of 4 × 512×1024 → 100000 / 2097152 ≈ 0.0477. 0 disables.
    min_kept: float = 0.0477
    mask_mode: MaskMode = MaskMode.xor  # TSE pixels kept: xor (official) | or | and | ohem (student only)
    # Per-class CE weights in the TSE stage (official: 19 fixed Cityscapes values). null = none, so the
    # CE stays the baseline's; weights make a class-weighted baseline necessary for a fair comparison.
    class_weights: list[float] | None = None
    # hard: TSE from W on (train_onlykd_two_stage_diff.py). linear: from W on,
    # (1 − λ)·TSE + λ·TFE with λ = (it − T)/(W − T) going 1 → 0 (…_warmup_lamda.py).
    switch: Switch = Switch.hard


def pixel_ce(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pixel CE ``[B, H, W]`` of logits bilinearly upsampled to the label size; 0 at ignore."""
    logits = upsample(logits.float(), labels.shape[-2:])
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index, reduction="none")


def tfe_weights(teacher_logits: torch.Tensor, teacher_aux: torch.Tensor) -> torch.Tensor:
    """``w_i = exp(−KL(σ(z^t_aux,i) ‖ σ(z^t_i)))`` at the main head's resolution, ``[B, h, w]``.

    The disagreement of the teacher's two predictors: 1 where they agree, → 0 where they do not.
    """
    log_main = F.log_softmax(teacher_logits.detach().float(), dim=1)
    log_aux = F.log_softmax(upsample(teacher_aux.detach().float(), log_main.shape[-2:]), dim=1)
    kl = F.kl_div(log_main, log_aux, reduction="none", log_target=True).sum(1)
    return torch.exp(-kl)


def tfe_loss(
    student_logits: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor, ignore_index: int
) -> torch.Tensor:
    """``Σ_i w_i·CE_i / #valid`` with ``w`` bilinearly upsampled to the label size (TFE-RDD)."""
    w = upsample(weights[:, None], labels.shape[-2:])[:, 0]
    valid = (labels != ignore_index).sum().clamp(min=1)
    return (w * pixel_ce(student_logits, labels, ignore_index)).sum() / valid


@torch.no_grad()
def hard_pixels(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, threshold: float, min_kept: int
) -> torch.Tensor:
    """OHEM hard pixels ``[B, H, W]``: valid and ground-truth probability ≤ θ'.

    θ' = max(θ, the ``min_kept``-th smallest ground-truth probability of the batch, ignore pixels
    counting as 1); with fewer than ``min_kept`` valid pixels θ' = 1 and every valid pixel is hard
    (where the official code crashes).
    """
    prob = torch.softmax(upsample(logits.float(), labels.shape[-2:]), dim=1)
    valid = labels != ignore_index
    target = torch.where(valid, labels, torch.zeros_like(labels))
    p_gt = torch.where(valid, prob.gather(1, target[:, None])[:, 0], torch.ones_like(prob[:, 0]))
    cut = torch.tensor(threshold, device=p_gt.device)
    if min_kept > 0:
        kth = torch.kthvalue(p_gt.flatten(), min(min_kept, p_gt.numel())).values
        cut = torch.maximum(cut, kth)
    return valid & (p_gt <= cut)


def tse_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int,
    threshold: float = 0.7,
    min_kept: int = 0,
    mask_mode: str = "xor",
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """CE on the pixels selected by the student's and teacher's OHEM masks (TSE-RDD).

    ``xor``: hard for exactly one of the two nets; ``or`` / ``and``; ``ohem``: hard for the student.
    Mean over the selected pixels, weighted by ``class_weights[y]`` when given (PyTorch's weighted
    mean ``Σ w_y CE / Σ w_y``); 0 when no pixel is selected.
    """
    hard_s = hard_pixels(student_logits, labels, ignore_index, threshold, min_kept)
    hard_t = hard_pixels(teacher_logits, labels, ignore_index, threshold, min_kept)
    keep = {"xor": hard_s ^ hard_t, "or": hard_s | hard_t, "and": hard_s & hard_t, "ohem": hard_s}[mask_mode]
    ce = pixel_ce(student_logits, labels, ignore_index, class_weights)
    if class_weights is None:
        norm = keep.sum()
    else:
        norm = (class_weights[torch.where(keep, labels, torch.zeros_like(labels))] * keep).sum()
    return (ce * keep).sum() / norm.clamp(min=1e-12)


@TERMS.register("rdd")
class RDD(LossTerm):
    """RDD: the task CE re-weighted by teacher difficulty (TFE), then masked by relative difficulty (TSE).

    Replaces the task loss (main CE + ``ctx.aux_weight`` · aux CE); adds no distillation objective of
    its own — ``conf/method/rdd.yaml`` adds the KD term as the official code does.

    - TFE-RDD (steps < W): ``w_i = exp(−KL(σ(z^t_aux,i) ‖ σ(z^t_i)))`` from the teacher's aux and main
      heads (aux resized to the main head's size), bilinearly upsampled to the label size;
      ``L = Σ_i w_i·CE_i(z^s) / #valid`` (+ aux_weight × the same weights on the student's aux CE).
    - TSE-RDD (steps ≥ W): OHEM masks (ground-truth probability ≤ θ, θ raised to the min_kept-th
      smallest) of student and teacher on logits upsampled to the label size;
      ``L = mean_{i ∈ hard_s XOR hard_t} CE_i(z^s)`` (+ aux_weight × the same with the student's and
      teacher's aux heads), optionally class-weighted.
    - ``switch=linear``: from W on, ``(1 − λ)·TSE + λ·TFE``, λ = (it − T)/(W − T) from 1 to 0.

    Paper: Liang et al., "Relative Difficulty Distillation for Semantic Segmentation" (arXiv
    2407.03719; code sunyueue/RDD ``train_onlykd_two_stage_diff.py``: stage "VGD" = TFE, "EDD" = TSE).
    Defaults converted: W = 4,000 of 40,000 → 0.1; θ = 0.7; min_kept = 100,000 pixels of a 4-image
    512×1024 GPU batch → 0.0477 of the batch's label pixels; XOR; no class weights (official: 19
    Cityscapes weights in TSE — a confound against an unweighted baseline, so optional, default none).
    Reduction: TFE divides by the valid pixels, so with w ≡ 1 it is exactly the baseline CE (the
    official ``torch.mean`` also counts ignore pixels in the denominator); TSE is a mean over the
    selected pixels, 0 when none (official: NaN). Ignore pixels: no CE, never hard. Deviations: bilinear
    resizing with align_corners=False (the project's rule; official True); the official TFE runs for
    W − 1 iterations (1-based ``iteration < W``), here for steps 0 … W − 1; no hard-coded crop size.
    Needs a teacher with an aux head. Batch composition: TFE is a per-pixel mean (independent); the
    min_kept cut is a quantile over the whole batch, so TSE depends on which images share it.
    """

    Config = RDDConfig
    requires = frozenset({"logits_low", "aux_logits"})
    replaces_task_loss = True
    # Zero at student = teacher in the TSE stage (equal hard-pixel masks, XOR selects none).
    batch_decomposable = False  # TSE: the min_kept threshold is a quantile over the batch

    def __init__(self, cfg: RDDConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        if cfg.warmup < 0 or cfg.min_kept < 0 or not 0 <= cfg.threshold <= 1:
            raise ConfigError("rdd: warmup and min_kept must be ≥ 0 and threshold in [0, 1]")
        if ctx.teacher_channels and "aux_logits" not in ctx.teacher_channels:
            raise ConfigError("rdd needs a teacher with an aux head (teacher.aux_head=true)")
        weights = cfg.class_weights
        if weights is not None and ctx.num_classes and len(weights) != ctx.num_classes:
            raise ConfigError(f"rdd.class_weights has {len(weights)} values for {ctx.num_classes} classes")
        self.register_buffer(
            "class_weights", None if weights is None else torch.tensor(weights, dtype=torch.float32)
        )

    @property
    def warmup_steps(self) -> int:
        w = self.cfg.warmup
        return round(w * self.ctx.total_steps) if w < 1 else int(w)

    def _min_kept(self, labels: torch.Tensor) -> int:
        k = self.cfg.min_kept
        return round(k * labels.numel()) if k < 1 else int(k)

    def _tfe(self, student: Taps, teacher: Taps, labels: torch.Tensor) -> torch.Tensor:
        if teacher.aux_logits is None:
            raise ValueError("rdd's TFE stage needs the teacher's aux_logits (a teacher with an aux head)")
        w = tfe_weights(teacher.logits_low, teacher.aux_logits)
        ignore = self.ctx.ignore_index
        loss = tfe_loss(student.logits_low, w, labels, ignore)
        if student.aux_logits is not None and self.ctx.aux_weight > 0:
            loss = loss + self.ctx.aux_weight * tfe_loss(student.aux_logits, w, labels, ignore)
        return loss

    def _tse(self, student: Taps, teacher: Taps, labels: torch.Tensor) -> torch.Tensor:
        args = (self.ctx.ignore_index, self.cfg.threshold, self._min_kept(labels), self.cfg.mask_mode)
        loss = tse_loss(student.logits_low, teacher.logits_low, labels, *args, self.class_weights)
        aux_s, aux_t = student.aux_logits, teacher.aux_logits
        if aux_s is not None and self.ctx.aux_weight > 0:
            if aux_t is None:
                raise ValueError("rdd's TSE stage needs the teacher's aux_logits for the student's aux head")
            loss = loss + self.ctx.aux_weight * tse_loss(aux_s, aux_t, labels, *args, self.class_weights)
        return loss

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        if labels is None:
            raise ValueError("rdd replaces the task loss and needs labels")
        warmup, total = self.warmup_steps, self.ctx.total_steps
        with fp32(student):
            if step < warmup:
                return self._tfe(student, teacher, labels)
            tse = self._tse(student, teacher, labels)
            if self.cfg.switch == "hard" or total <= warmup:
                return tse
            lam = (step - total) / (warmup - total)
            return (1 - lam) * tse + lam * self._tfe(student, teacher, labels)
