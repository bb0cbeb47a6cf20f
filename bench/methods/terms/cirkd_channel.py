"""CIRKD v2 channel relations: mini-batch and memory channel-to-channel KD and channel MSE."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.methods.terms.cirkd_memory import _gather
from bench.methods.terms.cirkd_minibatch import pool_features
from bench.methods.terms.fitnet import feat_channels
from bench.models.taps import Taps


@dataclass
class CIRKDChannelConfig(TermConfig):
    minibatch_weight: float = 1.0  # λ of the mini-batch channel relation (--lambda-minibatch-channel)
    memory_weight: float = 0.1  # λ of the memory channel relation (--lambda-memory-channel)
    mse_weight: float = 100.0  # λ of the channel MSE, "channel KD" (--lambda-channel-kd)
    contrast_temperature: float = 0.1  # τ dividing channel similarities (--contrast-temperature)
    kd_temperature: float = 1.0  # T_c of the memory term's KL (--contrast-kd-temperature)
    pool_size: int = 4  # average pooling, kernel = stride, ceil mode, before the projection head
    channel_memory_size: int = 10000  # teacher channel vectors kept (--channel-memory-size)
    channel_contrast_size: int = 2048  # queue entries contrasted per step (--channel-contrast-size)
    update_size: int = 256  # teacher channel vectors enqueued per step (official channel_update_freq)
    # Images whose channel pairs are formed: consecutive groups of group_size images (the official
    # per-GPU batch: 16 images over 8 GPUs = 2; Cityscapes v2 scripts, 8 over 8 = 1); 0 = whole batch.
    group_size: int = 2


def channel_vectors(feat: torch.Tensor) -> torch.Tensor:
    """``[B, D, h, w]`` → ``[B, D, h·w]`` with each channel's spatial vector L2-normalised."""
    return F.normalize(feat.flatten(2), dim=-1)


def minibatch_channel_loss(
    s: torch.Tensor, t: torch.Tensor, temperature: float, group_size: int
) -> torch.Tensor:
    """``(1/P) Σ_{(i,j)} (1/D) Σ_c KL(σ(S^t_ij[c,:]/τ) ‖ σ(S^s_ij[c,:]/τ))``, ``S_ij = V_i V_jᵀ`` (D×D).

    ``s``, ``t``: unit channel vectors ``[B, D, M]``. Every ordered pair (i, j), i = j included, of
    images in one group of ``group_size`` consecutive images (0: the batch), P pairs in all: the
    official ``batchmean`` (over D rows) per pair, summed and divided by the pairs of a GPU (B²).
    """
    b, d, m = s.shape
    g = b if group_size <= 0 or group_size >= b else group_size
    if b % g:
        raise ConfigError(f"cirkd_channel: batch {b} is not a multiple of group_size {g}")
    s, t = s.reshape(b // g, g, d, m), t.detach().reshape(b // g, g, d, m)
    sim_s = torch.einsum("ngcm,nhdm->nghcd", s, s) / temperature
    sim_t = torch.einsum("ngcm,nhdm->nghcd", t, t) / temperature
    kl = F.kl_div(F.log_softmax(sim_s, -1), F.log_softmax(sim_t, -1), reduction="sum", log_target=True)
    return kl / (b * g * d)


def memory_channel_loss(
    s: torch.Tensor, t: torch.Tensor, bank: torch.Tensor, temperature: float, kd_temperature: float
) -> torch.Tensor:
    """``T_c² · (1/n) Σ_r KL(σ(⟨t_r, Q⟩/(τ·T_c)) ‖ σ(⟨s_r, Q⟩/(τ·T_c)))`` over n = B·D channel rows."""
    scale = temperature * kd_temperature
    log_s = F.log_softmax(s @ bank.T / scale, dim=1)
    log_t = F.log_softmax(t.detach() @ bank.T / scale, dim=1)
    return F.kl_div(log_s, log_t, reduction="sum", log_target=True) / s.shape[0] * kd_temperature**2


@TERMS.register("cirkd_channel")
class CIRKDChannel(LossTerm):
    """CIRKD v2's channel terms: channel-to-channel relations in the mini-batch and against a memory,
    and a channel MSE ("channel KD"), on 4×4-pooled features.

    Formula: student feature → 4×4 average pool (ceil mode) → projection head (1×1 conv D_s→D_t,
    BN, ReLU, 1×1 conv D_t→D_t); teacher feature → the same pooling. Each channel's spatial vector
    (length M = ⌈h/4⌉·⌈w/4⌉) is L2-normalised: ``V ∈ R^{B×D_t×M}``. With ``S_ij = V_i V_jᵀ`` (D_t×D_t)
    and a queue Q of teacher channel vectors (``channel_contrast_size`` rows drawn at random),
    ``L = λ_mb · (1/P) Σ_(i,j) (1/D_t) Σ_c KL(σ(S^t_ij[c]/τ) ‖ σ(S^s_ij[c]/τ))
    + λ_mem · T_c² (1/(B·D_t)) Σ_r KL(σ(⟨V^t_r, Q⟩/τT_c) ‖ σ(⟨V^s_r, Q⟩/τT_c))
    + λ_mse · mean (V^s − V^t)²``.
    Paper: Yang et al., "CIRKDV2: Cross-Image Relational Knowledge Distillation with Contextual
    Modeling for Efficient Semantic Segmentation" (tech report; winycg/CIRKD @dab64db
    ``losses/cirkd_channel.py``, ``train_cirkdv2.py``, ``scripts/train_cirkdv2``). Reduction: official
    (batchmean per pair / B², batchmean over channel rows × T_c², element mean) — no conversion:
    τ = 0.1, T_c = 1, λ_mb = 1, λ_mem = 0.1, λ_mse = 100, queue 10,000, contrast 2,048, 256 vectors
    enqueued per step. The three parts share one projection head and one queue, so they are one
    term with three weights (the term weight multiplies all three; a part with weight 0 is skipped).
    Queue: as released — each training step first enqueues ``min(B·D_t, 256)`` random teacher
    channel vectors (all-gathered when a process group exists) at the pointer (a push that would
    reach the end overwrites the last slots and restarts at 0), then draws the contrast rows, so the
    sample can hold this step's own teacher channels; ``.eval()`` skips the enqueue. Queue width M
    comes from ``ctx.feature_size`` (⌈h/4⌉·⌈w/4⌉; the release's ``int(h·w/16)`` needs multiples of 4).
    The GCN block the released scripts put on the student feature before FitNet and all relation
    terms is the term ``cirkd_gcn``, which holds this term (``cirkd_v2_paper``). Not copied: SyncBN
    (BN on one device). Ignore pixels: not label-based. Student features of another size are
    bilinearly resized to the teacher's first. Batch composition: pairs within groups, queue
    contents — not a mean over images.
    """

    Config = CIRKDChannelConfig
    requires = frozenset({"feat"})
    identical_value = None  # the student passes a projection head first
    batch_decomposable = False  # pairs across images; training mode enqueues the batch
    uses_labels = False

    def __init__(self, cfg: CIRKDChannelConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        d_s, d_t = feat_channels(ctx, "cirkd_channel")
        if ctx.feature_size is None:
            raise ConfigError(
                "cirkd_channel sizes its channel queue from the feature map: "
                "pass TermContext(feature_size=(h, w))"
            )
        sizes = (cfg.pool_size, cfg.channel_memory_size, cfg.channel_contrast_size, cfg.update_size)
        if min(sizes) < 1 or cfg.group_size < 0:
            raise ConfigError("cirkd_channel: pool and queue sizes must be ≥ 1, group_size ≥ 0")
        h, w = ctx.feature_size
        self.dim = math.ceil(h / cfg.pool_size) * math.ceil(w / cfg.pool_size)
        self.head = nn.Sequential(
            nn.Conv2d(d_s, d_t, 1, bias=False),
            nn.BatchNorm2d(d_t),
            nn.ReLU(inplace=True),
            nn.Conv2d(d_t, d_t, 1, bias=False),
        )
        self.register_buffer("queue", F.normalize(torch.randn(cfg.channel_memory_size, self.dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Push ``min(n, update_size)`` random rows of the unit vectors ``keys[n, M]`` (released order)."""
        keys = _gather(keys)
        k = min(keys.shape[0], self.cfg.update_size, self.queue.shape[0])
        chosen = keys[torch.randperm(keys.shape[0])[:k].to(keys.device)]
        ptr, size = int(self.queue_ptr), self.queue.shape[0]
        if ptr + k >= size:
            self.queue[size - k :] = chosen
            self.queue_ptr.zero_()
        else:
            self.queue[ptr : ptr + k] = chosen
            self.queue_ptr.fill_(ptr + k)

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        cfg = self.cfg
        with fp32(student):
            s, t = aligned(student.feat, teacher.feat)
            s = self.head(pool_features(s, cfg.pool_size))
            t = pool_features(t.detach(), cfg.pool_size)
            vs, vt = channel_vectors(s), channel_vectors(t)
            if vt.shape[-1] != self.dim:
                raise ConfigError(
                    f"cirkd_channel: pooled teacher map has {vt.shape[-1]} positions, its queue "
                    f"{self.dim} (from TermContext.feature_size {self.ctx.feature_size}): train at "
                    "the size the term was built for"
                )
            loss = vs.new_zeros(())
            if cfg.minibatch_weight:
                mb = minibatch_channel_loss(vs, vt, cfg.contrast_temperature, cfg.group_size)
                loss = loss + cfg.minibatch_weight * mb
            rows_s, rows_t = vs.reshape(-1, self.dim), vt.reshape(-1, self.dim)
            if cfg.mse_weight:
                loss = loss + cfg.mse_weight * F.mse_loss(rows_s, rows_t)
            if self.training:
                self.enqueue(rows_t)
            if cfg.memory_weight:
                index = torch.randperm(self.queue.shape[0])[: cfg.channel_contrast_size]
                bank = self.queue[index.to(self.queue.device)]
                mem = memory_channel_loss(rows_s, rows_t, bank, cfg.contrast_temperature, cfg.kd_temperature)
                loss = loss + cfg.memory_weight * mem
            return loss

    def estimate_memory_mb(self) -> float | None:
        ctx = self.ctx
        d_t = self.head[0].out_channels
        b = ctx.batch_size
        g = b if self.cfg.group_size <= 0 or self.cfg.group_size >= b else self.cfg.group_size
        pairs = 6 * b * g * d_t * d_t  # similarities, their log-softmax and gradients, both nets
        bank = 4 * b * d_t * min(self.cfg.channel_contrast_size, self.queue.shape[0])
        return 4 * (self.queue.numel() + pairs + bank) / 2**20
