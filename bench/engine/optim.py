"""Optimizers (SGD, AdamW) and LR schedules (poly, cosine, constant; each with linear warm-up)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bench.config.schema import OptimizerConfig, ScheduleConfig


def build_optimizer(groups: list[dict], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """``groups``: param groups with an optional ``lr_mult``; weight decay applies to all."""
    for g in groups:
        g["lr"] = cfg.lr * g.pop("lr_mult", 1.0)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def lr_factor(cfg: ScheduleConfig, total_steps: int, base_lr: float) -> Callable[[int], float]:
    """The multiplier of the base LR at each step (for ``torch.optim.lr_scheduler.LambdaLR``).

    poly: ``(1 − t/T)^power``; cosine: ``½(1 + cos(π t/T))``; both decay towards ``min_lr``. During the
    first ``warmup_iters`` steps the factor ramps linearly from ``warmup_start_factor``.
    """
    floor = cfg.min_lr / base_lr if base_lr > 0 else 0.0

    def factor(step: int) -> float:
        progress = min(step / max(total_steps, 1), 1.0)
        if cfg.name == "poly":
            decay = (1 - progress) ** cfg.power
        elif cfg.name == "cosine":
            decay = 0.5 * (1 + math.cos(math.pi * progress))
        else:
            decay = 1.0
        f = floor + (1 - floor) * decay
        if step < cfg.warmup_iters:
            f *= cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * step / cfg.warmup_iters
        return f

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int, base_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, total_steps, base_lr))
