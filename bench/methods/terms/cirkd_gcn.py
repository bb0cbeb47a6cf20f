"""CIRKD v2's contextual (GCN) block: one trainable student module shared by the feature terms."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, fp32
from bench.methods.objective import schedule_multiplier
from bench.methods.terms.fitnet import feat_channels
from bench.models.taps import Taps


@dataclass
class CIRKDGCNConfig(TermConfig):
    # The feature terms fed the GCN output: key → that term's settings (``term:`` to rename, ``weight``,
    # ``schedule`` and its own keys, checked against its config class when the term is built). Empty by
    # default so that a config lists exactly its terms (dicts merge); conf/method/cirkd_gcn.yaml lists
    # the release's four.
    terms: dict[str, Any] = field(default_factory=dict)


class GCN(nn.Module):
    """Non-local block: ``out_conv([x, conv1(softmax(q kᵀ/√c) v)])``, q, k, v 1×1 convs to D/2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = channels // 2
        self.node_k = nn.Conv2d(channels, inner, 1, bias=False)
        self.node_v = nn.Conv2d(channels, inner, 1, bias=False)
        self.node_q = nn.Conv2d(channels, inner, 1, bias=False)
        self.conv1 = nn.Sequential(
            nn.Conv2d(inner, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.out_conv = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape

        def nodes(conv: nn.Module) -> torch.Tensor:  # [B, 1, h·w, D/2]: one attention head
            # contiguous: on a transposed view the CPU kernel falls back to the (h·w)² matrix path
            return conv(x).flatten(2).transpose(1, 2)[:, None].contiguous()

        # The fused kernel scales by 1/√(D/2) as the release does, without an (h·w)² matrix in memory.
        ctx = F.scaled_dot_product_attention(nodes(self.node_q), nodes(self.node_k), nodes(self.node_v))
        ctx = ctx[:, 0].transpose(1, 2).reshape(b, -1, h, w)
        return self.out_conv(torch.cat([x, self.conv1(ctx)], dim=1))


@TERMS.register("cirkd_gcn")
class CIRKDGCN(LossTerm):
    """CIRKD v2's GCN block on the student feature, read by the feature terms it holds.

    Formula: ``g = out_conv([f^s, conv1(softmax(q kᵀ/√c) v)])`` with ``q, k, v`` 1×1 convolutions
    of the student feature ``f^s`` (``feat``) to c = D_s/2 channels and attention over the h·w
    positions of each image, ``conv1`` = 1×1 conv c→D_s, BN, ReLU and ``out_conv`` = 1×1 conv
    2D_s→D_s, BN, ReLU (a non-local block, trained with the student; the student's own prediction
    does not pass it). ``L = Σ_k λ_k · s_k(t) · term_k(taps with feat = g, teacher)`` over the terms
    in ``terms`` (FitNet, the CIRKD pixel terms and the channel terms as released).
    Paper: Yang et al., "CIRKDV2: Cross-Image Relational Knowledge Distillation with Contextual
    Modeling for Efficient Semantic Segmentation" (tech report; winycg/CIRKD @dab64db
    ``losses/gcn.py``; ``train_cirkdv2.py`` L244, L349–L367: when ``--lambda-fitnet`` ≠ 0 the student
    feature is replaced by the GCN output before FitNet and every relation term). Reduction: each
    held term's own; the block adds no loss of its own. Choices: BN instead of the release's SyncBN
    (one device); the attention is the fused ``scaled_dot_product_attention`` (same value and
    gradients, no (h·w)² matrix: the release's is 268 MB per image at 64×128). Terms that read
    logits see the student's own; a held term may not replace the task loss, train a network of its
    own after the step, or be another GCN block. Ignore pixels: as the held terms.
    """

    Config = CIRKDGCNConfig
    requires = frozenset({"feat"})  # the instance adds its held terms' taps
    identical_value = None  # a randomly initialised block between student and teacher
    batch_decomposable = False  # BatchNorm in training mode; relation terms pair images
    uses_labels = True  # as the held terms (the instance says)

    def __init__(self, cfg: CIRKDGCNConfig, ctx: TermContext) -> None:
        from bench.methods import build_term

        super().__init__(cfg, ctx)
        d_s, _ = feat_channels(ctx, "cirkd_gcn")
        if not cfg.terms:
            raise ConfigError("cirkd_gcn holds no terms: list the feature terms under cirkd_gcn.terms")
        self.held = nn.ModuleDict()
        for key, settings in cfg.terms.items():
            settings = dict(settings or {})
            name = settings.pop("term", None) or key
            if name not in TERMS.names() or name == "cirkd_gcn":
                raise ConfigError(
                    f"cirkd_gcn.terms.{key}: '{name}' is not a term it can hold; "
                    f"use one of {', '.join(n for n in TERMS.names() if n != 'cirkd_gcn')}"
                )
            cls = TERMS.get(name)
            if cls.replaces_task_loss or cls.after_step is not LossTerm.after_step:
                raise ConfigError(
                    f"cirkd_gcn.terms.{key}: '{name}' replaces the task loss or trains a network after "
                    "the step; list it as a term of the method instead"
                )
            self.held[key] = build_term(name, ctx, **settings)
        if not any("feat" in t.requires for t in self.held.values()):
            raise ConfigError("cirkd_gcn: none of its terms reads feat, the only tap the block changes")
        self.requires = frozenset({"feat"}).union(*(t.requires for t in self.held.values()))
        self.uses_labels = any(t.uses_labels for t in self.held.values())
        self.gcn = GCN(d_s)

    def student_parameters(self) -> list[nn.Parameter]:
        return list(self.gcn.parameters()) + [p for t in self.held.values() for p in t.student_parameters()]

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            g = dataclasses.replace(student, feat=self.gcn(student.feat.float()))
            loss = g.feat.new_zeros(())
            for term in self.held.values():
                weight = term.cfg.weight * schedule_multiplier(term.cfg.schedule, step, self.ctx.total_steps)
                if weight:
                    loss = loss + weight * term(g, teacher, labels, step).float()
            return loss

    def estimate_memory_mb(self) -> float | None:
        held = [e for t in self.held.values() if (e := t.estimate_memory_mb()) is not None]
        return sum(held) if held else None
