"""SKD holistic (adversarial) distillation of score maps (Liu et al., CVPR 2019)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.models.taps import Taps, upsample

# Typed keys: composition refuses other values ("wgan-gp" is no identifier, hence the functional form).
CriticLoss = StrEnum("CriticLoss", [(m, m) for m in ("hinge", "wgan-gp")])
CriticLoss.__doc__ = "``skd_holistic.loss``: the discriminator's objective."


class Preprocess(StrEnum):
    """``skd_holistic.preprocess``: score-map preprocessing inside the discriminator."""

    bn = "bn"
    tanh = "tanh"
    none = "none"


class DOptimizer(StrEnum):
    """``skd_holistic.d_optimizer``: the discriminator's own optimizer."""

    adam = "adam"
    sgd = "sgd"


# Four stride-2 4×4 convs and a final 4×4 conv need maps of at least 64 px a side (official input:
# 65×65 logits of 512×512 crops); smaller maps are bilinearly enlarged to it.
MIN_SIZE = 64


@dataclass
class SKDHolisticConfig(TermConfig):
    # Discriminator objective: "hinge" (CIRKD) or "wgan-gp" (official SKD/IFVD/CWD: WGAN + gradient
    # penalty). The generator (student) term is −mean D(z^s) for both.
    loss: CriticLoss = CriticLoss.hinge
    gp_weight: float = 10.0  # λ_gp of the gradient penalty (wgan-gp only)
    d_weight: float = 0.1  # λ_d: multiplies the discriminator's loss (official: also its penalty)
    # Score-map preprocessing inside D: "bn" (official preprocess_GAN_mode=1), "tanh" (mode 2), "none".
    preprocess: Preprocess = Preprocess.bn
    conv_dim: int = 64  # width of D's first conv (official adv_conv_dim)
    # D's own optimizer: "adam" (CIRKD, IFVD/CWD official; betas 0.9/0.99) or "sgd" (SKD official:
    # momentum 0.9 and the student's weight decay, 5e-4 in its script).
    d_optimizer: DOptimizer = DOptimizer.adam
    d_lr: float = 4e-4
    d_betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    d_momentum: float = 0.9
    d_weight_decay: float = 0.0
    # D's LR follows d_lr·(1 − step/iterations)^power: 0 = constant (CIRKD), 0.9 = the official
    # SKD/IFVD poly schedule.
    d_poly_power: float = 0.0


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``γ·(V·softmax(QᵀK)ᵀ) + x``, γ initialised at 0."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(dim, dim // 8, 1)
        self.key = nn.Conv2d(dim, dim // 8, 1)
        self.value = nn.Conv2d(dim, dim, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.query(x).flatten(2), self.key(x).flatten(2), self.value(x).flatten(2)
        attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # [B, N, N] over the N positions
        return self.gamma * (v @ attention.transpose(1, 2)).view_as(x) + x


class Discriminator(nn.Module):
    """The official SAGAN-style critic on C-channel score maps; returns a ``[B, 1, h', w']`` map.

    preprocess → 4 × (spectral-norm 4×4 stride-2 conv → LeakyReLU 0.1), with self-attention after the
    third and fourth → 4×4 conv to one channel (``networks/sagan_models.py`` of SKD/IFVD/CWD, CIRKD
    ``utils/sagan.py``). Maps under :data:`MIN_SIZE` px a side are bilinearly enlarged first.
    """

    def __init__(self, in_channels: int, conv_dim: int = 64, preprocess: str = "bn") -> None:
        super().__init__()
        self.preprocess: nn.Module = {
            "bn": lambda: nn.BatchNorm2d(in_channels),
            "tanh": nn.Tanh,
            "none": nn.Identity,
        }[preprocess]()
        dims = [in_channels, conv_dim, 2 * conv_dim, 4 * conv_dim, 8 * conv_dim]
        self.blocks = nn.ModuleList(
            nn.Sequential(spectral_norm(nn.Conv2d(dims[i], dims[i + 1], 4, 2, 1)), nn.LeakyReLU(0.1))
            for i in range(4)
        )
        self.attn3 = SelfAttention(dims[3])
        self.attn4 = SelfAttention(dims[4])
        self.last = nn.Conv2d(dims[4], 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIZE:
            scale = MIN_SIZE / min(h, w)
            x = upsample(x, (max(MIN_SIZE, round(h * scale)), max(MIN_SIZE, round(w * scale))))
        x = self.preprocess(x)
        x = self.blocks[2](self.blocks[1](self.blocks[0](x)))
        x = self.attn4(self.blocks[3](self.attn3(x)))
        return self.last(x)


def generator_loss(d_student: torch.Tensor) -> torch.Tensor:
    """``−mean D(z^s)`` (both objectives): the student is rewarded where D scores it as teacher."""
    return -d_student.mean()


def critic_loss(d_student: torch.Tensor, d_teacher: torch.Tensor, loss: str) -> torch.Tensor:
    """D's loss without penalty: hinge ``mean ReLU(1 − D(z^t)) + mean ReLU(1 + D(z^s))`` or WGAN
    ``mean D(z^s) − mean D(z^t)``."""
    if loss == "hinge":
        return F.relu(1 - d_teacher).mean() + F.relu(1 + d_student).mean()
    return d_student.mean() - d_teacher.mean()


def gradient_penalty(
    disc: Callable[[torch.Tensor], torch.Tensor], student: torch.Tensor, teacher: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP: ``mean_b (‖∇_x D(x̂_b)‖₂ − 1)²`` at ``x̂ = α·z^t + (1 − α)·z^s``, α ~ U(0, 1) per image.

    The norm runs over each image's whole C×h×w map; the graph is kept so the penalty trains D.
    """
    alpha = torch.rand(teacher.shape[0], 1, 1, 1, device=teacher.device, dtype=teacher.dtype)
    mixed = (alpha * teacher.detach() + (1 - alpha) * student.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Record ops on ``module`` without gradients for its parameters (the student's pass)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@TERMS.register("skd_holistic")
class SKDHolistic(LossTerm):
    """Adversarial distillation: a discriminator tells teacher from student score maps.

    Formula: the term (the generator side, what :meth:`forward` returns) is ``L_G = −mean D(z^s)``;
    the discriminator D, a network of the term's own with its own optimizer, is trained in
    :meth:`after_step` (after the student's step, on the same step's detached maps) on
    ``λ_d·[mean ReLU(1 − D(z^t)) + mean ReLU(1 + D(z^s))]`` (hinge) or
    ``λ_d·[mean D(z^s) − mean D(z^t) + λ_gp·GP]`` (WGAN-GP). D scores the native-resolution logits
    (C channels), BN-preprocessed, with the official SAGAN critic (:class:`Discriminator`). Paper: Liu
    et al., "Structured Knowledge Distillation for Semantic Segmentation", CVPR 2019 (holistic term;
    official ``networks/kd_model.py``, ``utils/criterion.py``, ``networks/sagan_models.py``); CIRKD
    ``losses/adv.py``, ``utils/sagan.py``. Reduction: means over D's output map and the batch, as all
    codes. Defaults (CIRKD, also the adversarial part of its SKD/IFVD/CWD bundles): hinge, weight
    (λ_adv) 0.001, λ_d 0.1, Adam 4e-4 (0.9, 0.99), constant D LR. Official SKD: ``loss=wgan-gp``,
    weight 0.1 (its λ_d weighs both sides), ``d_optimizer=sgd``, ``d_weight_decay=5e-4``,
    ``d_poly_power=0.9``; IFVD/CWD official: wgan-gp, weight 0.001, Adam with poly 0.9.
    Ignore pixels: not label-based; D sees whole maps, including ignore and padding. Batch
    composition: depends on it — D's BatchNorm preprocessing normalises with the statistics of the
    batch (official); ``preprocess=none`` removes that, but D's spectral norms still advance one
    power iteration per training-mode pass. No zero at student = teacher: the generator term is a
    score, whose value depends on D (only the WGAN critic loss is 0 there). ``student_parameters()``
    is empty: D's parameters never join the student's optimizer; D's optimizer state is saved with
    the term (``get_extra_state``), so resumed runs continue exactly. A student map of another size is
    bilinearly resized to the teacher's; maps under 64 px a side are enlarged for D.
    """

    Config = SKDHolisticConfig
    requires = frozenset({"logits_low"})
    uses_labels = False
    identical_value = None  # the generator loss is −D(student): no minimum at student = teacher
    batch_decomposable = False  # training mode: the discriminator's BatchNorm uses batch statistics

    def __init__(self, cfg: SKDHolisticConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        classes = ctx.teacher_channels.get("logits") or ctx.student_channels.get("logits") or ctx.num_classes
        if not classes:
            raise ConfigError(
                "skd_holistic sizes its discriminator by the classes: pass TermContext(num_classes=C)"
            )
        self.disc = Discriminator(int(classes), cfg.conv_dim, cfg.preprocess)
        self.d_optimizer = self._build_optimizer()
        self.last_d_loss: torch.Tensor | None = None  # on the device; read it only when logging

    def _build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.d_optimizer == "adam":
            return torch.optim.Adam(
                self.disc.parameters(), cfg.d_lr, betas=tuple(cfg.d_betas), weight_decay=cfg.d_weight_decay
            )
        return torch.optim.SGD(
            self.disc.parameters(), cfg.d_lr, momentum=cfg.d_momentum, weight_decay=cfg.d_weight_decay
        )

    def student_parameters(self) -> list[nn.Parameter]:
        return []

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student), _frozen(self.disc):
            s, _ = aligned(student.logits_low, teacher.logits_low)
            return generator_loss(self.disc(s))

    def discriminator_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """``λ_d ·`` D's loss on detached maps (student first, as the official code: BN statistics)."""
        s, t = student_logits.detach().float(), teacher_logits.detach().float()
        loss = critic_loss(self.disc(s), self.disc(t), self.cfg.loss)
        if self.cfg.loss == "wgan-gp":
            loss = loss + self.cfg.gp_weight * gradient_penalty(self.disc, s, t)
        return self.cfg.d_weight * loss

    def after_step(self, student: Taps, teacher: Taps | None, labels: torch.Tensor, step: int) -> None:
        """One optimizer step of D on this step's maps, in fp32, with its own LR schedule."""
        if teacher is None:
            return
        t = teacher.logits_low
        progress = min(step / max(self.ctx.total_steps, 1), 1.0)
        for group in self.d_optimizer.param_groups:
            group["lr"] = self.cfg.d_lr * (1 - progress) ** self.cfg.d_poly_power
        with torch.autocast(t.device.type, enabled=False), torch.enable_grad():
            s = upsample(student.logits_low.detach().float(), t.shape[-2:])
            self.d_optimizer.zero_grad(set_to_none=True)
            loss = self.discriminator_loss(s, t)
            loss.backward()
            self.d_optimizer.step()
        self.last_d_loss = loss.detach()

    def get_extra_state(self) -> dict[str, Any]:
        return {"d_optimizer": self.d_optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        # A copy: Optimizer.load_state_dict keeps the given tensors, which would otherwise be shared
        # with the optimizer the state came from when both live in one process.
        self.d_optimizer.load_state_dict(copy.deepcopy(state["d_optimizer"]))
