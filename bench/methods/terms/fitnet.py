"""FitNet feature regression through a 1×1 adapter (Romero et al., ICLR 2015)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.models.taps import Taps


@dataclass
class FitNetConfig(TermConfig):
    pass


def feat_channels(ctx: TermContext, term: str) -> tuple[int, int]:
    """``(D_s, D_t)``: the widths of the student's and the teacher's ``feat`` tap."""
    d_s, d_t = ctx.student_channels.get("feat"), ctx.teacher_channels.get("feat")
    if d_s is None or d_t is None:
        raise ConfigError(
            f"{term} builds an adapter from the feature widths: pass TermContext(student_channels="
            "{'feat': D_s}, teacher_channels={'feat': D_t}) (Segmenter.tap_channels())"
        )
    return int(d_s), int(d_t)


def fitnet_loss(adapted_student: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
    """``mean_{b,d,i} (s_{b,d,i} − f^t_{b,d,i})²`` with ``s`` the adapted student feature. fp32."""
    return F.mse_loss(adapted_student.float(), teacher_feat.detach().float())


@TERMS.register("fitnet")
class FitNet(LossTerm):
    """Regress the teacher's penultimate feature from the student's through a trainable 1×1 conv.

    Formula: ``L = (1/(B·D_t·h·w)) Σ_{b,d,i} ((W f^s)_{b,d,i} − f^t_{b,d,i})²`` with W a 1×1 conv
    D_s → D_t without bias, always applied (even when D_s = D_t) and trained with the student (it is
    in :meth:`student_parameters`). Paper: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR
    2015; segmentation form of CIRKD ``losses/fitnet.py`` (post-ASPP feature). Reduction: element
    mean, as CIRKD, so no conversion; default weight 10 (CIRKD ``train_fitnet.sh``). Ignore pixels:
    not label-based; every position, including ignore and padding, is regressed (CIRKD). Batch
    composition: a per-element mean, independent of which images share a batch. Minimum 0 when the
    adapted student equals the teacher (e.g. identical features and W = identity); W starts from
    PyTorch's default conv init as in CIRKD. A student map of another size is bilinearly resized to
    the teacher's before the adapter.
    """

    Config = FitNetConfig
    requires = frozenset({"feat"})
    uses_labels = False
    identical_value = None  # the adapter starts at a random init, not the identity
    batch_decomposable = True

    def __init__(self, cfg: FitNetConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        d_s, d_t = feat_channels(ctx, "fitnet")
        self.adapter = nn.Conv2d(d_s, d_t, kernel_size=1, bias=False)

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            s, t = aligned(student.feat, teacher.feat)
            return fitnet_loss(self.adapter(s), t)
