"""Pixel KD on z-scored logits: logit standardisation (Sun et al., CVPR 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.config.schema import TermConfig
from bench.methods import TERMS
from bench.methods.base import LossTerm, aligned, fp32, labels_to
from bench.methods.terms.kd import kd_loss
from bench.models.taps import Taps


@dataclass
class KDLSConfig(TermConfig):
    # Base temperature τ applied after standardisation; the loss is scaled by τ² (official --base-temp 2).
    temperature: float = 2.0
    # σ with Bessel's correction (torch.std's default, what the release computes); false: biased σ.
    unbiased: bool = True
    # Added to σ before dividing (the release's 1e-7).
    eps: float = 1e-7
    # As in ``kd``: off = every position is distilled (official behaviour of pixel KD).
    mask_ignore: bool = False


def standardize(logits: torch.Tensor, unbiased: bool = True, eps: float = 1e-7) -> torch.Tensor:
    """``(z − mean_c z) / (eps + std_c z)`` over the class axis (dim 1) of ``[B, C, ...]`` logits, fp32."""
    z = logits.float()
    std, mean = torch.std_mean(z, dim=1, keepdim=True, correction=1 if unbiased else 0)
    return (z - mean) / (eps + std)


@TERMS.register("kd_ls")
class KDLogitStandardization(LossTerm):
    """Pixel-wise KL between the teacher's and the student's z-scored logits, temperature τ, × τ².

    Formula: ``Z(z)_{b,:,i} = (z_{b,:,i} − mean_c z_{b,c,i}) / (ε + σ_c(z_{b,:,i}))`` (σ over the C
    classes of one pixel, unbiased by default, ε = 1e-7);
    ``L = τ² · (1/N) Σ_{b,i} KL(σ(Z(z^t)_i/τ) ‖ σ(Z(z^s)_i/τ))`` on the native-resolution logits.
    Paper: Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024 (official code
    sunshangquan/logit-standardization-KD, ``mdistiller/distillers/KD.py``: ``normalize`` + ``kd_loss``,
    ``--base-temp 2 --kd-weight 9``). The paper works on classification (one logit vector per image);
    here each pixel is a sample, as ``kd`` does: the release's ``normalize`` standardises the *last*
    axis, which on a ``[B, C, h, w]`` tensor would be the width, so the class axis is taken explicitly.
    Reduction: KL summed over classes, mean over the N = B·h·w pixels (the release's ``.sum(1).mean()``),
    × τ². A student map of another size is bilinearly resized to the teacher's before standardising.
    Ignore pixels: distilled like every other (``mask_ignore=true`` excludes them). Minimum 0 when
    the student's logits equal the teacher's (and whenever they are a positive affine map of them).
    """

    Config = KDLSConfig
    requires = frozenset({"logits_low"})
    batch_decomposable = True

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            s, t = aligned(student.logits_low, teacher.logits_low)
            s = standardize(s, self.cfg.unbiased, self.cfg.eps)
            t = standardize(t.detach(), self.cfg.unbiased, self.cfg.eps)
            mask = None
            if self.cfg.mask_ignore and labels is not None:
                mask = (labels_to(labels, t.shape[-2:]) != self.ctx.ignore_index).float()
            return kd_loss(s, t, self.cfg.temperature, mask)
