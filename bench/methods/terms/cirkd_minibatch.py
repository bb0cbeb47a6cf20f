"""CIRKD mini-batch pixel-pair (cross-image affinity) distillation (Yang et al., CVPR 2022)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.methods.relational import chunk_memory_mb, pair_affinity_kl_sum, unit
from bench.models.taps import Taps

# Float32 copies of the [B, D, M] node vectors alive at the peak: the student's pooled map, its
# normalised nodes (the pooled map itself when pooled), their gradient buffer and the gradient
# flowing back; the teacher's unit nodes.
_STUDENT_COPIES = 4
_TEACHER_COPIES = 1


@dataclass
class CIRKDMiniBatchConfig(TermConfig):
    temperature: float = 0.1  # τ of the row-wise softmax over affinities (--contrast-temperature)
    # Average-pool the features with kernel = stride = pool_size (ceil mode) before the affinities:
    # M = ⌈h/p⌉·⌈w/p⌉ nodes per image. 1 = no pooling (official default); 2 = the official 2×2 flag.
    pool_size: int = 1
    # Images whose pairs are formed: consecutive groups of group_size images of the batch (the
    # official per-GPU batch: 16 images over 8 GPUs = 2); 0 = the whole batch (all B² pairs).
    group_size: int = 2


def pool_features(feat: torch.Tensor, pool_size: int) -> torch.Tensor:
    """Average-pool with kernel = stride = ``pool_size`` and ceil mode (the official pooling flag)."""
    if pool_size <= 1:
        return feat
    return F.avg_pool2d(feat, pool_size, stride=pool_size, ceil_mode=True)


def minibatch_pair_loss(
    student_feat: torch.Tensor,
    teacher_feat: torch.Tensor,
    temperature: float = 0.1,
    group_size: int = 0,
    pool_size: int = 1,
) -> torch.Tensor:
    """``(1/P) Σ_{(i,j)} (1/M) Σ_r KL(σ(A^t_ij[r,:]/τ) ‖ σ(A^s_ij[r,:]/τ))`` on ``[B, D, h, w]`` features.

    Features are L2-normalised per position; ``A_ij = F_iᵀ F_j`` (``M×M``, M = h·w) for every ordered
    pair (i, j), i = j included, of images in the same group of ``group_size`` consecutive images
    (0 or more than B: the whole batch), P pairs in all. The KL of each row is summed over its M
    columns and averaged over rows and pairs — the official ``batchmean`` per pair divided by B².
    Computed a block of rows at a time with the gradient fused in (:mod:`bench.methods.relational`):
    no ``M×M`` matrix is kept, memory is ``O(B·M·D)`` plus a few blocks. fp32; the teacher is detached.
    ``pool_size`` > 1 first pools both maps (:func:`pool_features`; the pooled teacher map is freed
    as soon as its nodes exist).
    """
    b = student_feat.shape[0]
    g = min(group_size or b, b)
    if b % g:
        raise ValueError(f"batch of {b} images does not split into groups of {g} (group_size)")

    def nodes(feat: torch.Tensor) -> torch.Tensor:  # [B, D, M]
        return pool_features(feat.float(), pool_size).flatten(2)

    # Pooled copies are ours (autograd keeps only the pooling's input): normalised in place.
    s = nodes(student_feat)  # normalised inside the KL, with its gradient
    t = unit(nodes(teacher_feat.detach()), inplace=pool_size > 1)
    return pair_affinity_kl_sum(s, t, temperature, g, scratch=pool_size > 1) / (b * g * s.shape[2])


def minibatch_memory_mb(
    batch_size: int,
    feature_size: tuple[int, int],
    pool_size: int,
    group_size: int,
    channels: tuple[int, int] = (0, 0),
) -> float:
    """Peak extra memory (MB) of :func:`minibatch_pair_loss` forward + backward at these sizes.

    Node vectors of both nets (:data:`_STUDENT_COPIES`, :data:`_TEACHER_COPIES`) and the row blocks;
    ``channels`` = (student D, teacher D).
    """
    g = min(group_size or batch_size, batch_size)
    p = max(pool_size, 1)
    m = math.ceil(feature_size[0] / p) * math.ceil(feature_size[1] / p)
    nodes = 4 * batch_size * m * (_STUDENT_COPIES * channels[0] + _TEACHER_COPIES * channels[1])
    return nodes / 2**20 + chunk_memory_mb(g * m)


@TERMS.register("cirkd_minibatch")
class CIRKDMiniBatch(LossTerm):
    """CIRKD mini-batch pixel-pair term: cross-image pixel-affinity distributions, KL teacher ‖ student.

    Formula: features L2-normalised per position; for each ordered image pair (i, j) of a group
    (i = j included) ``A_ij = F_iᵀ F_j ∈ R^{M×M}``; ``L = (1/P) Σ_(i,j) (1/M) Σ_r KL(σ(A^t_ij[r]/τ) ‖
    σ(A^s_ij[r]/τ))`` (no T² factor). Paper: Yang et al., "Cross-Image Relational Knowledge
    Distillation for Semantic Segmentation", CVPR 2022 (winycg/CIRKD ``losses/cirkd_mini_batch.py``).
    Reduction: official (``batchmean`` per pair = mean over rows, summed over pairs / B²) — no
    conversion: τ = 0.1, weight 1 (``--lambda-minibatch-pixel``). Input: the penultimate feature
    ``feat``; student features of another size are bilinearly resized to the teacher's, widths may
    differ (affinities are D-free, no adapter). Ignore pixels: not label based, every position takes
    part (official). Batch composition: pairs are formed within groups of ``group_size`` consecutive
    images — the official cross-image set is the per-GPU batch (2 images at 16 over 8 GPUs, the
    all-gather is commented out), so the default 2 reproduces it on one device; ``group_size=0`` uses
    all B² pairs. The value depends on which images share a group. Memory: the affinities are built
    a block of rows at a time with the gradient fused in, so no ``M×M`` matrix is kept (M =
    positions after ``pool_size`` pooling; a 512×1024 crop at OS8 without pooling has M = 8192, 67 M
    entries per pair); see :meth:`estimate_memory_mb`. Time is ``O(B·g·M²·D)``.
    """

    Config = CIRKDMiniBatchConfig
    requires = frozenset({"feat"})
    uses_labels = False
    batch_decomposable = False  # pixel pairs across the images of a group

    def __init__(self, cfg: CIRKDMiniBatchConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        if cfg.pool_size < 1 or cfg.group_size < 0:
            raise ConfigError("cirkd_minibatch: pool_size must be ≥ 1 and group_size ≥ 0")
        if cfg.group_size and ctx.batch_size > cfg.group_size and ctx.batch_size % cfg.group_size:
            raise ConfigError(
                f"cirkd_minibatch.group_size={cfg.group_size} must divide train.batch_size={ctx.batch_size}"
            )

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            s, t = aligned(student.feat, teacher.feat)
            return minibatch_pair_loss(s, t, self.cfg.temperature, self.cfg.group_size, self.cfg.pool_size)

    def estimate_memory_mb(self) -> float | None:
        if self.ctx.feature_size is None:
            return None
        widths = (self.ctx.student_channels.get("feat") or 0, self.ctx.teacher_channels.get("feat") or 0)
        return minibatch_memory_mb(
            self.ctx.batch_size, self.ctx.feature_size, self.cfg.pool_size, self.cfg.group_size, widths
        )
