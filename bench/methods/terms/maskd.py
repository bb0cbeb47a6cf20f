"""MasKD: masked distillation with receptive tokens (Huang et al., ICLR 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.config.schema import TermConfig
from bench.errors import CheckpointError, ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32
from bench.models.taps import Taps

TOKENS_DIR = "maskd_tokens"  # beside the teacher checkpoint: <teacher dir>/maskd_tokens/<sha256>.pt


@dataclass
class MasKDConfig(TermConfig):
    # Where the tokens come from: "teacher" = the file keyed by the run's teacher checkpoint
    # (``make maskd-tokens``), a path to a tokens file, or "random" (the release's N(0, 0.01) init;
    # for tests and cost only — untrained tokens are not MasKD).
    tokens: str = "teacher"
    num_tokens: int = 8  # T receptive tokens (release: 8)
    aux_weight: float = 0.4  # the aux-logit term's factor (train_maskd.py: 0.4·λ·MasKD(aux))


def tokens_path(teacher_checkpoint: str | Path, sha256: str) -> Path:
    """The tokens file of a teacher checkpoint: keyed by its SHA-256, in ``maskd_tokens/`` beside it."""
    return Path(teacher_checkpoint).parent / TOKENS_DIR / f"{sha256}.pt"


def read_tokens(path: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """``(tokens [T, C], meta)`` of a tokens file written by ``make maskd-tokens``."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
        return data["tokens"].float(), data["meta"]
    except Exception as e:
        raise CheckpointError(f"MasKD tokens file {path} is not readable ({e})") from None


def receptive_masks(tokens: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Masks ``sigmoid(Q_t · z_{b,:,i})``: tokens ``[T, C]``, logits ``[B, C, h, w]`` → ``[B, T, h, w]``."""
    return torch.sigmoid(torch.einsum("tc,bchw->bthw", tokens.float(), logits.float()))


def dice_diversity(masks: torch.Tensor) -> torch.Tensor:
    """Mean Dice coefficient ``2⟨m_t, m_u⟩ / (‖m_t‖² + ‖m_u‖²)`` over ordered pairs t ≠ u and images."""
    m = masks.flatten(2)  # [B, T, N]
    dot = m @ m.transpose(1, 2)  # [B, T, T]
    sq = torch.diagonal(dot, dim1=1, dim2=2) + 1e-12
    dice = 2 * dot / (sq[:, :, None] + sq[:, None, :])
    t = m.shape[1]
    off = ~torch.eye(t, dtype=torch.bool, device=m.device)
    return dice[:, off].mean()


def masked_logits(tokens: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1: ``(Σ_t m_t ⊙ z, dice)`` — the masked logits the CE supervises and the diversity term."""
    masks = receptive_masks(tokens, logits)
    return torch.einsum("bthw,bchw->bchw", masks, logits.float()), dice_diversity(masks)


def maskd_loss(student: torch.Tensor, teacher: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``½ · mean_{b,t,c} [Σ_i m²_{b,t,i} (z^s_{b,c,i} − z^t_{b,c,i})² / (Σ_i m_{b,t,i} + 1e-5)]``.

    Masks from the teacher's logits; ``[B, C, h, w]`` maps of equal shape; fp32, teacher detached.
    """
    t = teacher.detach().float()
    masks = receptive_masks(tokens, t)  # [B, T, h, w]
    sq = (student.float() - t).pow(2)  # [B, C, h, w]
    num = torch.einsum("bthw,bchw->btc", masks.pow(2), sq)
    den = masks.sum((2, 3))[:, :, None] + 1e-5
    return 0.5 * (num / den).mean()


@TERMS.register("maskd")
class MasKD(LossTerm):
    """MasKD: logit distillation weighted by receptive masks that tokens learnt on the teacher.

    Formula: masks ``m_{b,t,i} = sigmoid(Q_t · z^t_{b,:,i})`` from T = 8 tokens ``Q ∈ R^{T×C}`` and the
    teacher's logits; ``L = ½ · mean_{b,t,c} [Σ_i m²_{b,t,i} (z^s_{b,c,i} − z^t_{b,c,i})² /
    (Σ_i m_{b,t,i} + 1e-5)] + 0.4 · (the same on the aux logits)`` (m² in the numerator, m in the
    normaliser, as released), on native-resolution logits. Paper: Huang et al., "Masked
    Distillation with Receptive Tokens", ICLR 2023 (official hunto/MasKD @b5af34f
    ``segmentation/losses/maskd.py``, ``train_maskd.py``; stage 1 ``train_mask_module.py``).
    Reduction: official (mean over B·T·C, ×½) — weight 1 carries over. Tokens: trained by stage 1
    (``make maskd-tokens``: the frozen teacher's masked logits ``Σ_t m_t ⊙ z^t`` under CE plus the
    mean pairwise Dice of the masks, only the tokens learn) and stored keyed by the teacher
    checkpoint's SHA-256; a tokens file of another teacher is refused, naming both. The same tokens
    mask the aux logits (the release applies its 19-class module to both heads). The aux part runs
    only when student and teacher both have an aux head. Ignore pixels: not label-based. A student
    map of another size is bilinearly resized to the teacher's. Minimum 0 when student = teacher.
    """

    Config = MasKDConfig
    requires = frozenset({"logits_low", "aux_logits"})
    batch_decomposable = True
    uses_labels = False

    def __init__(self, cfg: MasKDConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        if cfg.num_tokens < 1:
            raise ConfigError("maskd.num_tokens must be ≥ 1")
        self.register_buffer("tokens", self._load_tokens(cfg, ctx))
        self.source = cfg.tokens

    def _load_tokens(self, cfg: MasKDConfig, ctx: TermContext) -> torch.Tensor:
        c = ctx.num_classes
        if cfg.tokens == "random" or (cfg.tokens == "teacher" and ctx.cost_only):
            return torch.randn(cfg.num_tokens, max(c, 1)) * 0.01
        if cfg.tokens == "teacher":
            if ctx.teacher_checkpoint is None:
                raise ConfigError(
                    "maskd.tokens=teacher needs the run's teacher checkpoint "
                    "(TermContext.teacher_checkpoint); pass maskd.tokens=/path/to/tokens.pt"
                )
            path = tokens_path(*ctx.teacher_checkpoint)
            if not path.is_file():
                raise CheckpointError(
                    f"no MasKD tokens for teacher {ctx.teacher_checkpoint[0]} (sha256 "
                    f"{ctx.teacher_checkpoint[1][:12]}…) at {path}: train them with `make maskd-tokens "
                    "DATASET=… TEACHER=…` (the run's dataset and teacher)"
                )
        else:
            path = Path(cfg.tokens)
            if not path.is_file():
                raise CheckpointError(f"maskd.tokens={cfg.tokens}: no such file")
        tokens, meta = read_tokens(path)
        if ctx.teacher_checkpoint is not None and meta.get("teacher_sha256") != ctx.teacher_checkpoint[1]:
            raise CheckpointError(
                f"MasKD tokens {path} belong to teacher {meta.get('teacher_checkpoint')} (sha256 "
                f"{str(meta.get('teacher_sha256'))[:12]}…, {meta.get('teacher')} on {meta.get('dataset')}), "
                f"not to this run's teacher {ctx.teacher_checkpoint[0]} (sha256 "
                f"{ctx.teacher_checkpoint[1][:12]}…): train tokens for it with `make maskd-tokens`"
            )
        if tuple(tokens.shape) != (cfg.num_tokens, c):
            raise ConfigError(
                f"MasKD tokens {path} are {tuple(tokens.shape)} (tokens × classes), the run needs "
                f"({cfg.num_tokens}, {c}): set maskd.num_tokens or train tokens for this dataset"
            )
        return tokens

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        with fp32(student):
            loss = maskd_loss(*aligned(student.logits_low, teacher.logits_low), self.tokens)
            if self.cfg.aux_weight and student.aux_logits is not None and teacher.aux_logits is not None:
                aux = maskd_loss(*aligned(student.aux_logits, teacher.aux_logits), self.tokens)
                loss = loss + self.cfg.aux_weight * aux
            return loss
