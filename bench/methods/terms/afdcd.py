"""Af-DCD: augmentation-free dense contrastive distillation (Fan et al., NeurIPS 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.models.taps import Taps


class Mask(StrEnum):
    """``afdcd.mask``: random positions (``--rand-mask`` True, the default) or the centre third."""

    random = "random"
    center = "center"


class Projector(StrEnum):
    """``afdcd.projector``: 3×3 conv → ReLU → 3×3 conv, or the two-branch ``EnhancedProjector``."""

    plain = "plain"
    enhanced = "enhanced"


@dataclass
class AfDCDConfig(TermConfig):
    fd_weight: float = 4e-5  # λ_fd of the masked feature term (train_ocmgd.py --lambda-fd default)
    ctr_weight: float = 1e-3  # λ_ctr of the omni-contrastive term (--lambda-ctr default)
    temperature: float = 0.07  # τ_ocd of the contrastive logits
    groups: int = 16  # M_ocd: channel groups; D_t must be a multiple
    pool_size: int = 4  # max pooling before the contrastive term (kernel = stride, floor)
    patch_size: int = 4  # side of the square patches whose positions contrast with each other
    mask: Mask = Mask.random
    mask_ratio: float = 0.75  # ζ: fraction of positions zeroed by the random mask
    projector: Projector = Projector.plain


class EnhancedProjector(nn.Module):
    """Two 3×3 conv → ReLU blocks in a row, each followed by its own 3×3 conv, outputs averaged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        conv = lambda: nn.Conv2d(channels, channels, 3, padding=1)  # noqa: E731
        self.block_1 = nn.Sequential(conv(), nn.ReLU(inplace=True))
        self.block_2 = nn.Sequential(conv(), nn.ReLU(inplace=True))
        self.adaptor_1, self.adaptor_2 = conv(), conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.block_1(x)
        x2 = self.block_2(x1)
        return (self.adaptor_1(x1) + self.adaptor_2(x2)) / 2


def contrast_grid(h: int, w: int, pool_size: int, patch_size: int) -> tuple[int, int, int]:
    """``(pool, h', w')``: the pooling used and the map kept for the contrastive term.

    The release pools (Cityscapes, ADE20K, VOC, COCO-Stuff: 64×128 or 64×64 → whole 4×4 patches) or,
    for CamVid's 45×45 maps, does not pool and crops to 44×44 (``dataset == 'camvid'``). Without a
    dataset flag: pool when the pooled map is made of whole patches, else do not pool (the CamVid
    branch, where pooling would leave 11×11); then the top-left crop to multiples of the patch.
    """
    hp, wp = h // pool_size, w // pool_size
    whole = min(hp, wp) >= patch_size and hp % patch_size == 0 and wp % patch_size == 0
    pool = pool_size if whole else 1
    hp, wp = h // pool, w // pool
    return pool, hp - hp % patch_size, wp - wp % patch_size


def to_contrast_rows(x: torch.Tensor, patch: int, groups: int) -> torch.Tensor:
    """``[B, C, H, W]`` → ``[B·P, patch²·M, C/M]``: per patch, one row per (position, channel group)."""
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h // patch, patch, w // patch, patch)
    # → [B, H/p, W/p, p, p, M, C/M]: rows ordered by position, then group (row r has group r mod M)
    x = x.permute(0, 3, 5, 4, 6, 1, 2)
    return x.reshape(-1, patch * patch * groups, c // groups)


def omni_contrastive_loss(
    pred: torch.Tensor, target: torch.Tensor, temperature: float, groups: int, patch: int
) -> torch.Tensor:
    """``(1/(B·H·W)) Σ_rows CE([−‖s_r − t_r‖₁, −‖s_r − t_q‖₁ for q of another group] / τ, 0)``.

    ``pred``, ``target``: ``[B, C, H, W]`` (H, W multiples of ``patch``). Within each patch a row is a
    (position, channel group) vector of C/M values; its positive is the teacher's row at the same
    position and group, its negatives every teacher row of the patch in another group.
    """
    b, _, h, w = pred.shape
    s, t = to_contrast_rows(pred, patch, groups), to_contrast_rows(target.detach(), patch, groups)
    sim = -torch.cdist(s, t, p=1) / temperature  # [B·P, R, R], R = patch²·M
    r = sim.shape[-1]
    group = torch.arange(r, device=sim.device) % groups
    same = group[:, None] == group[None, :]
    positive = torch.diagonal(sim, dim1=-2, dim2=-1)  # [B·P, R]
    negatives = sim.masked_fill(same, float("-inf"))
    logsumexp = torch.logaddexp(positive, torch.logsumexp(negatives, dim=-1))
    return (logsumexp - positive).sum() / (h * w) / b


@TERMS.register("afdcd")
class AfDCD(LossTerm):
    """Af-DCD: masked feature distillation through a projector plus an omni-contrastive term.

    Formula: the student's last encoder stage ``f^s`` (``stages[-1]``, ResNet c4) → 1×1 conv with bias
    to D_t channels when D_s ≠ D_t → zeroed at a random ζ = 75 % of positions (``mask=random``) or
    over the centre third (``mask=center``) → projector ``g`` (3×3 conv, ReLU, 3×3 conv at D_t, or the
    enhanced two-branch one) → ``u``. ``L = λ_fd · (1/B) Σ (u − f^t)²`` (summed over channels and
    positions) ``+ λ_ctr · L_ctr``, where ``L_ctr`` max-pools ``u`` and ``f^t`` 4×4, cuts them into
    4×4 patches, splits channels into M = 16 groups and, for each (position p, group m) row of a
    patch, takes CE over the logits ``−‖u_{p,m} − f^t_{p,m}‖₁/τ`` (positive) and
    ``−‖u_{p,m} − f^t_{q,m'}‖₁/τ`` for every position q of the patch and group m' ≠ m (negatives),
    τ = 0.07, summed and divided by the pooled H·W and by B.
    Paper: Fan et al., "Augmentation-free Dense Contrastive Knowledge Distillation for Efficient
    Semantic Segmentation", NeurIPS 2023 (official OSVAI/Af-DCD @5b086a7 ``losses/ocmgd.py``,
    ``train_ocmgd.py``, ``train_scripts/*``). Reduction: official (sum / B; sum / (H·W) / B) — weights
    carry over: λ_fd = 4e-5, λ_ctr = 1e-3 (argparse defaults); scripts use λ_fd 1e-6 … 8e-6, λ_ctr
    0.005 … 0.04 (Cityscapes 2e-6, 0.005). Choices where the release is unclear: the Cityscapes R18
    script passes ``--rand_mask False --enhance_projector True``, which argparse (``--rand-mask``,
    ``type=bool``) would reject or read as True — the defaults here are the argparse ones (random
    mask, plain projector); the alignment conv is missing when D_s = D_t in the release (identity
    here). Maps whose pooled size is not made of whole patches are not pooled (the release's CamVid
    branch, 45×45), and the contrastive maps are cropped top-left to multiples of the patch
    (CamVid: 45 → 44), so every released dataset gets the release's grid without a flag. The term's
    value is not zero when student equals teacher (masking, projector). Ignore pixels: not
    label-based. A student map of another size is bilinearly resized to the teacher's first. Cost:
    the projector convolves at the teacher's width (two 3×3 convs at 2,048 channels for ResNet-101,
    75 M parameters trained with the student).
    """

    Config = AfDCDConfig
    requires = frozenset({"stages"})
    identical_value = None
    uses_labels = False

    def __init__(self, cfg: AfDCDConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        d_s, d_t = (
            (ctx.student_channels.get("stages") or [None])[-1],
            (ctx.teacher_channels.get("stages") or [None])[-1],
        )
        if not d_s or not d_t:
            raise ConfigError(
                "afdcd reads the last encoder stage: pass TermContext(student_channels={'stages': [...]}, "
                "teacher_channels={'stages': [...]}) (Segmenter.tap_channels())"
            )
        if cfg.groups < 1 or d_t % cfg.groups:
            raise ConfigError(
                f"afdcd: the teacher's last stage has {d_t} channels, not a multiple of groups={cfg.groups}; "
                "set afdcd.groups to a divisor of it"
            )
        if min(cfg.pool_size, cfg.patch_size) < 1 or not 0.0 <= cfg.mask_ratio <= 1.0:
            raise ConfigError("afdcd: pool_size and patch_size must be ≥ 1, mask_ratio in [0, 1]")
        if ctx.feature_size is not None and cfg.ctr_weight:
            h, w = self._stage_size(ctx)
            if min(contrast_grid(h, w, cfg.pool_size, cfg.patch_size)[1:]) < 1:
                raise ConfigError(
                    f"afdcd: the teacher's last stage is {h}×{w}, smaller than one {cfg.patch_size}×"
                    f"{cfg.patch_size} patch; set afdcd.patch_size ≤ {min(h, w)}"
                )
        self.align: nn.Module = nn.Conv2d(d_s, d_t, 1) if d_s != d_t else nn.Identity()
        if cfg.projector == Projector.enhanced:
            self.projector: nn.Module = EnhancedProjector(d_t)
        else:
            self.projector = nn.Sequential(
                nn.Conv2d(d_t, d_t, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(d_t, d_t, 3, padding=1)
            )

    @staticmethod
    def _stage_size(ctx: TermContext) -> tuple[int, int]:
        # The last stage of the literature's OS8 encoders has the logits' size (feature_size).
        assert ctx.feature_size is not None
        return int(ctx.feature_size[0]), int(ctx.feature_size[1])

    @property
    def batch_decomposable(self) -> bool:  # type: ignore[override]
        return self.cfg.mask == Mask.center  # a random mask is drawn for the whole batch at once

    def masked(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.cfg.mask == Mask.random:
            # The release's draw: uniform on [0, 1) per position, zeroed where it exceeds 1 − ζ.
            keep = torch.rand(b, 1, h, w).to(x.device) <= 1 - self.cfg.mask_ratio
        else:
            keep = torch.ones(b, 1, h, w, dtype=torch.bool, device=x.device)
            keep[:, :, h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = False
        return x * keep

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        cfg = self.cfg
        with fp32(student):
            s, t = aligned(student.stages[-1], teacher.stages[-1])
            t = t.detach()
            u = self.projector(self.masked(self.align(s)))
            b, _, h, w = t.shape
            loss = u.new_zeros(())
            if cfg.fd_weight:
                loss = loss + cfg.fd_weight * F.mse_loss(u, t, reduction="sum") / b
            if cfg.ctr_weight:
                pool, hp, wp = contrast_grid(h, w, cfg.pool_size, cfg.patch_size)
                if min(hp, wp) < 1:
                    raise ConfigError(
                        f"afdcd: the teacher's last stage is {h}×{w}, smaller than one patch; "
                        f"set afdcd.patch_size ≤ {min(h, w)}"
                    )
                up, tp = (F.max_pool2d(x, pool) if pool > 1 else x for x in (u, t))
                up, tp = up[..., :hp, :wp], tp[..., :hp, :wp]
                ctr = omni_contrastive_loss(up, tp, cfg.temperature, cfg.groups, cfg.patch_size)
                loss = loss + cfg.ctr_weight * ctr
            return loss
