"""SKD pair-wise (structured) distillation over pooled feature nodes (Liu et al., CVPR 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.models.taps import Taps

# Full [B, M, M] fp32 matrices alive at the peak of forward + backward: 2 measured on CPU (the teacher
# affinity and the difference in forward; the difference and its gradient in backward), plus one for
# allocator slack and matmul workspaces. The [B, D, M] node tensors are negligible next to them.
AFFINITY_COPIES = 3


@dataclass
class SKDPairConfig(TermConfig):
    # Node grid: max-pool with kernel = stride = pool_kernel, ceil mode (CIRKD: 2 ⇒ ⌈h/2⌉·⌈w/2⌉ nodes,
    # 2,048 for a 64×128 map). 1 = every position is a node (quadratic memory: see estimate_memory_mb).
    pool_kernel: int = 2
    # > 0: the official SKD pooling instead, kernel = stride = ⌊scale·h⌋ × ⌊scale·w⌋ (0.5 ⇒ 2×2 = 4
    # nodes, more when h or w is odd); overrides pool_kernel. 0 = off.
    pool_scale: float = 0.0
    # Official SKD divides by the channel norm computed under detach() (+1e-8), so no gradient flows
    # through the norm; CIRKD (default) uses F.normalize, with gradient.
    detach_norm: bool = False


def pool_window(size: tuple[int, int], pool_kernel: int, pool_scale: float) -> tuple[int, int]:
    """The max-pool kernel (= stride) for an ``(h, w)`` map under the config's node grid."""
    if pool_scale > 0:
        return max(1, int(pool_scale * size[0])), max(1, int(pool_scale * size[1]))
    return pool_kernel, pool_kernel


def node_count(size: tuple[int, int], window: tuple[int, int]) -> int:
    """Nodes M after ceil-mode pooling of an ``(h, w)`` map with ``window``."""
    return math.ceil(size[0] / window[0]) * math.ceil(size[1] / window[1])


def _unit_nodes(feat: torch.Tensor, window: tuple[int, int], detach_norm: bool) -> torch.Tensor:
    """``[B, D, M]`` pooled node vectors with unit L2 norm over channels."""
    nodes = F.max_pool2d(feat, window, stride=window, ceil_mode=True).flatten(2)
    if detach_norm:
        return nodes / (nodes.norm(dim=1, keepdim=True).detach() + 1e-8)
    return F.normalize(nodes, dim=1)


def skd_pair_loss(
    student_feat: torch.Tensor,
    teacher_feat: torch.Tensor,
    window: tuple[int, int] = (2, 2),
    detach_norm: bool = False,
) -> torch.Tensor:
    """``(1/(B·M²)) Σ_b Σ_{m,n} (A^s_{b,mn} − A^t_{b,mn})²`` with ``A_b = F̂_bᵀ F̂_b``.

    ``F̂_b ∈ R^{D×M}``: the ``[B, D, h, w]`` features max-pooled with kernel = stride = ``window``
    (ceil mode) into M nodes, each L2-normalised over channels, so ``A`` holds cosine affinities and
    D may differ between the nets. Memory O(B·M²). fp32; the teacher is detached.
    """
    s = _unit_nodes(student_feat.float(), window, detach_norm)
    t = _unit_nodes(teacher_feat.detach().float(), window, detach_norm)
    a_t = t.transpose(1, 2) @ t
    # A^s − A^t in one batched matmul-add, and mse_loss against an expanded zero: 2 live [B, M, M]
    # buffers at the peak instead of 5 with (A^s − A^t).pow(2).mean() (measured on CPU).
    diff = torch.baddbmm(a_t, s.transpose(1, 2), s, beta=-1.0)
    del a_t
    return F.mse_loss(diff, diff.new_zeros(()).expand_as(diff))


@TERMS.register("skd_pair")
class SKDPair(LossTerm):
    """Pair-wise affinity distillation on pooled nodes of the penultimate feature.

    Formula: pool ``feat`` into M nodes (max-pool, ceil mode), L2-normalise each node over channels,
    ``A_b = F̂_bᵀ F̂_b`` (M×M cosine affinities per image),
    ``L = (1/(B·M²)) Σ_b Σ_{m,n} (A^s_{b,mn} − A^t_{b,mn})²``. Paper: Liu et al., "Structured Knowledge
    Distillation for Semantic Segmentation", CVPR 2019 / TPAMI 2020 (official
    irfanICMLL/structure_knowledge_distillation ``utils/criterion.py``; CIRKD ``losses/skd.py``).
    Reduction: mean over B·M² as in both codes, so no conversion. Defaults (CIRKD protocol): 2×2
    max-pool ⇒ M = ⌈h/2⌉·⌈w/2⌉, gradient through the normaliser, weight 10. The official SKD setting is
    ``pool_scale=0.5`` (≈4 nodes), ``detach_norm=true``, weight 0.5 (``run_train_val.sh``) — a very
    different loss: M is the term's main hyper-parameter. Ignore pixels: not label-based; every
    position, including ignore and padding, enters the nodes (official). Batch composition:
    affinities are per image, so the value does not depend on which images share a batch. Minimum 0
    when student equals teacher. No adapter (affinities are independent of D); a student map of
    another size is bilinearly resized to the teacher's first. Memory: O(B·M²), checked at start by
    :meth:`estimate_memory_mb` (``pool_kernel=1`` at 64×128: ≈6 GB at batch 8, 12 GB at batch 16).
    """

    Config = SKDPairConfig
    requires = frozenset({"feat"})
    uses_labels = False
    batch_decomposable = True

    def __init__(self, cfg: SKDPairConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        if cfg.pool_kernel < 1 or cfg.pool_scale < 0:
            raise ConfigError(f"skd_pair: pool_kernel must be ≥ 1 and pool_scale ≥ 0, got {cfg}")

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        t = teacher.feat
        window = pool_window(tuple(t.shape[-2:]), self.cfg.pool_kernel, self.cfg.pool_scale)
        with fp32(student):
            s, t = aligned(student.feat, t)
            return skd_pair_loss(s, t, window, self.cfg.detach_norm)

    def estimate_memory_mb(self) -> float | None:
        """``AFFINITY_COPIES`` fp32 ``[B, M, M]`` matrices at the context's batch and feature size."""
        if self.ctx.feature_size is None:
            return None
        size = tuple(self.ctx.feature_size)
        m = node_count(size, pool_window(size, self.cfg.pool_kernel, self.cfg.pool_scale))
        return AFFINITY_COPIES * self.ctx.batch_size * m * m * 4 / 2**20
