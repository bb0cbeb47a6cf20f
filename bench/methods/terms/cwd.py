"""CWD: channel-wise distillation of spatial distributions (Shu et al., ICCV 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.methods.terms.fitnet import feat_channels
from bench.models.taps import Taps


class Adapter(StrEnum):
    """``cwd_feat.adapter``: conv without bias (CIRKD) or conv → BN → ReLU (TorchDistiller)."""

    conv = "conv"
    conv_bn_relu = "conv_bn_relu"


class Normalizer(StrEnum):
    """``cwd_feat.normalizer``: channels of the canonical normaliser B·D_t, or CIRKD's B·D_s."""

    teacher = "teacher"
    student = "student"


@dataclass
class CWDLogitsConfig(TermConfig):
    temperature: float = 4.0  # τ: spatial softmax temperature; the loss is scaled by τ²


@dataclass
class CWDFeatConfig(TermConfig):
    temperature: float = 4.0
    # Student → teacher 1×1 adapter, built only when D_s ≠ D_t: "conv" (no bias; CIRKD) or
    # "conv_bn_relu" (official TorchDistiller: conv → BN → ReLU).
    adapter: Adapter = Adapter.conv
    # Channel count in the normaliser B·D: "teacher" (canonical, D_t = channels after the adapter) or
    # "student" (CIRKD's code, D_s before the adapter: the loss is D_t/D_s times the canonical one).
    normalizer: Normalizer = Normalizer.teacher


def cwd_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 4.0, channels: int | None = None
) -> torch.Tensor:
    """``τ²/(B·C) Σ_{b,c} KL(φ(z^t_{b,c}/τ) ‖ φ(z^s_{b,c}/τ))``, φ = softmax over the h·w positions.

    ``[B, C, h, w]`` maps of equal shape; ``channels`` replaces C in the normaliser (default: C).
    KL is summed over positions, averaged over the B·C channel distributions. log-softmax in fp32;
    the teacher is detached.
    """
    b, c = teacher.shape[:2]
    log_s = F.log_softmax(student.float().flatten(2) / temperature, dim=-1)
    log_t = F.log_softmax(teacher.detach().float().flatten(2) / temperature, dim=-1)
    kl = F.kl_div(log_s, log_t, reduction="sum", log_target=True)
    return kl * temperature**2 / (b * (channels or c))


_DOC = """
    Formula: ``φ(u)_{b,c,i} = exp(u_{b,c,i}/τ) / Σ_j exp(u_{b,c,j}/τ)`` over the h·w positions of each
    channel; ``L = τ²/(B·C) Σ_{b,c} KL(φ(u^t)_{b,c} ‖ φ(u^s)_{b,c})``. Paper: Shu et al.,
    "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021 (official
    irfanICMLL/TorchDistiller ``SemSeg-distill/utils/criterion.py``; CIRKD ``losses/cwd.py``; mmrazor
    ``losses/cwd.py``). Reduction: KL summed over positions, mean over the B·C channel distributions,
    τ² — the official reduction, so weights carry over unchanged. log-softmax in fp32 (the official
    and CIRKD codes take ``log(softmax)``, which underflows to −inf for peaked channels). Ignore
    pixels: not label-based; the softmax runs over every position, including ignore and padding
    (official). Batch composition: one distribution per (image, channel), so the value does not
    depend on which images share a batch. Minimum 0 when student equals teacher. A student map of
    another size is bilinearly resized to the teacher's.
"""


@TERMS.register("cwd_logits")
class CWDLogits(LossTerm):
    __doc__ = (
        "Channel-wise distillation on the native-resolution logits (u = z, C = classes).\n"
        + _DOC
        + """
    Defaults: τ = 4, weight 3 (official ``exp_cwd.sh``; CIRKD ``--lambda-cwd-logit 3``); mmseg/mmrazor
    use τ = 1 with weight 5 (Cityscapes) or 10 (ADE20K). No adapter.
    """
    )

    Config = CWDLogitsConfig
    requires = frozenset({"logits_low"})
    uses_labels = False
    batch_decomposable = True  # normaliser B·C: a mean over images

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            return cwd_loss(*aligned(student.logits_low, teacher.logits_low), self.cfg.temperature)


@TERMS.register("cwd_feat")
class CWDFeat(LossTerm):
    __doc__ = (
        "Channel-wise distillation on the penultimate feature (u = f, C = D_t).\n"
        + _DOC
        + """
    The student feature is resized, then mapped to D_t channels by a trainable 1×1 adapter when
    D_s ≠ D_t (``adapter=conv``: conv without bias, CIRKD; ``conv_bn_relu``: conv → BN → ReLU, the
    official TorchDistiller adapter, whose InPlaceABNSync's leaky ReLU followed by ReLU is a ReLU); the
    adapter is trained with the student. Normaliser: canonical B·D_t. CIRKD's code divides by B·D_s
    (channels before its adapter), i.e. its value is D_t/D_s times this one: ``normalizer=student``
    reproduces it, or convert its weight as λ_canonical = λ_CIRKD·D_t/D_s. Defaults: τ = 4, weight 50
    (CIRKD ``--lambda-cwd-fea 50``; with D_s = D_t — e.g. the DeepLabV3-R18/R101 pair, both 256 here —
    the two normalisers coincide).
    """
    )

    Config = CWDFeatConfig
    requires = frozenset({"feat"})
    uses_labels = False
    batch_decomposable = True  # normaliser B·C: a mean over images

    def __init__(self, cfg: CWDFeatConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        self.student_dim, self.teacher_dim = feat_channels(ctx, "cwd_feat")
        self.adapter: nn.Module = nn.Identity()
        if self.student_dim != self.teacher_dim:
            conv = nn.Conv2d(self.student_dim, self.teacher_dim, kernel_size=1, bias=False)
            if cfg.adapter == "conv":
                self.adapter = conv
            else:
                self.adapter = nn.Sequential(conv, nn.BatchNorm2d(self.teacher_dim), nn.ReLU())

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            s, t = aligned(student.feat, teacher.feat)
            s = self.adapter(s)
            channels = self.student_dim if self.cfg.normalizer == "student" else self.teacher_dim
            return cwd_loss(s, t, self.cfg.temperature, channels)
