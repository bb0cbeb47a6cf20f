"""IFVD: intra-class feature variation distillation (Wang et al., ECCV 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32, labels_to
from bench.models.taps import Taps

PROTOTYPE_EPS = 1e-6  # official: Σ f / (count + 1e-6)
COSINE_EPS = 1e-8  # nn.CosineSimilarity's default, as in the official code


@dataclass
class IFVDConfig(TermConfig):
    # Average over valid pixels only. Off = official behaviour: ignore pixels contribute 0 but are
    # counted in the mean's denominator.
    mask_ignore: bool = False


def prototype_cosine(feat: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per pixel, the cosine between its feature and its image's prototype of its class.

    ``feat`` ``[B, D, h, w]``, ``labels`` ``[B, h, w]`` at the feature size. The prototype of class k
    in image b is ``Σ_{i: y_i=k} f_{b,:,i} / (n_{b,k} + 1e-6)``. No loop over classes: one
    ``scatter_add`` sums the features of every (image, class) slot, one batched matmul gives each
    pixel's dot product with every prototype of its image, and a gather keeps its own class's — no
    ``[B, D, h·w]`` tensor beyond the input. Pixels whose label is not in ``[0, C)`` (ignore) share a
    spare slot and get cosine 1: the official code leaves their "prototype" equal to their own
    feature. The cosine clamps each norm at 1e-8 (``F.cosine_similarity``). Returns ``[B, h·w]``.
    """
    f = feat.flatten(2)  # [B, D, M]
    y = labels.flatten(1)  # [B, M]
    valid = (y >= 0) & (y < num_classes)
    slot = torch.where(valid, y, num_classes)
    sums = f.new_zeros(*f.shape[:2], num_classes + 1).scatter_add(2, slot[:, None].expand_as(f), f)
    counts = torch.zeros_like(sums[:, 0]).scatter_add(1, slot, torch.ones_like(y, dtype=f.dtype))
    prototypes = sums / (counts[:, None] + PROTOTYPE_EPS)  # [B, D, C+1]
    dots = (f.transpose(1, 2) @ prototypes).gather(2, slot[..., None])[..., 0]  # [B, M]
    norms = f.norm(dim=1).clamp(min=COSINE_EPS) * prototypes.norm(dim=1).clamp(min=COSINE_EPS).gather(1, slot)
    return torch.where(valid, dots / norms, torch.ones_like(dots))


def ifvd_loss(
    student_feat: torch.Tensor,
    teacher_feat: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    mask_ignore: bool = False,
) -> torch.Tensor:
    """``(1/N) Σ_{b,i} (cos(f^s_{b,i}, c^s_{b,y_i}) − cos(f^t_{b,i}, c^t_{b,y_i}))²``.

    Labels are nearest-resized to the feature size. N counts every pixel (official) or, with
    ``mask_ignore``, only the valid ones. Prototypes live in each net's own space, so D_s may differ
    from D_t. fp32; the teacher is detached.
    """
    labels = labels_to(labels, teacher_feat.shape[-2:])
    s = prototype_cosine(student_feat.float(), labels, num_classes)
    t = prototype_cosine(teacher_feat.detach().float(), labels, num_classes)
    sq = (s - t).pow(2)
    if not mask_ignore:
        return sq.mean()
    valid = ((labels >= 0) & (labels < num_classes)).flatten(1)
    return (sq * valid).sum() / valid.sum().clamp(min=1)


@TERMS.register("ifvd")
class IFVD(LossTerm):
    """Match each pixel's similarity to its class prototype between student and teacher.

    Formula: per image b and class k present (labels nearest-resized to the feature size), prototype
    ``c_{b,k} = Σ_{i: y_i=k} f_{b,:,i} / (n_{b,k} + 1e-6)``; per pixel ``s_{b,i} = cos(f_{b,:,i},
    c_{b,y_i})``; ``L = (1/N) Σ_{b,i} (s^s_{b,i} − s^t_{b,i})²`` on the penultimate feature. Paper:
    Wang et al., "Intra-class Feature Variation Distillation for Semantic Segmentation", ECCV 2020
    (official YukangWang/IFVD ``utils/criterion.py``; CIRKD ``losses/ifvd.py``). Reduction: element
    mean over the B·h·w pixels (``nn.MSELoss``) in both codes, so no conversion; default weight 20
    (CIRKD ``train_ifvd.sh``; the official code uses 200 — the term's scale depends on the features,
    so tune it). Ignore pixels (any label outside ``[0, C)``): cosine 1 for both nets, hence zero
    loss, but counted in the denominator N as in the official code; ``mask_ignore=true`` averages
    over valid pixels only. Batch composition: prototypes are per image, so the value does not
    depend on which images share a batch (but small segments give noisy prototypes). Minimum 0 when
    student equals teacher. No adapter: each net's prototypes live in its own feature space. A student
    map of another size is bilinearly resized to the teacher's. Vectorised over classes (scatter-add
    and one batched matmul, see :func:`prototype_cosine`); memory O(B·h·w·C) beyond the features.
    """

    Config = IFVDConfig
    requires = frozenset({"feat"})
    batch_decomposable = True  # prototypes per image

    def __init__(self, cfg: IFVDConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        if ctx.num_classes < 1:
            raise ConfigError("ifvd needs the dataset's classes: pass TermContext(num_classes=C)")

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            s, t = aligned(student.feat, teacher.feat)
            return ifvd_loss(s, t, labels, self.ctx.num_classes, self.cfg.mask_ignore)
