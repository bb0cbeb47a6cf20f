"""MasKD stage 1: train receptive tokens on a frozen teacher, ``python -m bench.maskd_tokens``.

``make maskd-tokens DATASET=… TEACHER=…`` loads the teacher checkpoint a run with those presets
uses, trains T tokens on it (only the tokens learn; hunto/MasKD ``train_mask_module.py``: SGD lr 0.1,
momentum 0.9, weight decay 1e-3, poly 0.9, 10,000 iterations, CE on the masked logits ``Σ_t m_t ⊙ z``
plus the mean pairwise Dice of the masks) with the dataset's training batches, and stores them in
``maskd_tokens/<teacher sha256>.pt`` beside the checkpoint, where every MasKD run of that teacher
finds them. Deviation: the release runs the teacher in train mode (BN statistics drift under
``no_grad``); here it is in eval mode, as the teacher is in stage 2.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.cli import run_cli

if TYPE_CHECKING:
    from bench.config import RunConfig

log = logging.getLogger("bench")

ITERATIONS = 10_000  # train_mask_module.py --max-iterations default (the release's script keeps it)
LR, MOMENTUM, WEIGHT_DECAY, POWER = 0.1, 0.9, 1e-3, 0.9
NUM_TOKENS = 8

USAGE = f"""usage: python -m bench.maskd_tokens [--part=both|full|tune] [dataset=...] [teacher=...]
       [iterations=N] [key=value ...]

Trains {NUM_TOKENS} MasKD tokens on the run's teacher ({ITERATIONS:,} iterations unless iterations=N) with
the dataset's training batches (train.batch_size, train.crop_size, augmentation) and stores them as
maskd_tokens/<teacher sha256>.pt beside the teacher checkpoint, where MasKD runs look them up.
--part=both (default): the full-data teacher's tokens (final runs) and the tuning teacher's, trained on
the tuning-train part (tuning trials); full or tune: one of them."""


def split_iterations(overrides: list[str]) -> tuple[int, list[str]]:
    """``iterations=N`` (this command's own key) taken out of the Hydra overrides."""
    from bench.errors import ConfigError

    rest, iterations = [], ITERATIONS
    for o in overrides:
        if o.startswith("iterations="):
            value = o.split("=", 1)[1]
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"iterations={value}: give a positive whole number of iterations")
            iterations = int(value)
        else:
            rest.append(o)
    return iterations, rest


def train_tokens(cfg: RunConfig, iterations: int = ITERATIONS, num_tokens: int = NUM_TOKENS) -> Path:
    """Train tokens on ``cfg``'s teacher and store them under its key; returns the file."""
    import torch

    from bench.data import build_split
    from bench.data.pipeline import AugmentedView, TrainBatchSampler, make_loader
    from bench.methods.objective import cross_entropy
    from bench.methods.terms.maskd import masked_logits, tokens_path
    from bench.teachers import load_teacher
    from bench.utils.io import save_torch_atomic
    from bench.utils.runtime import resolve_device

    device = resolve_device(cfg.device)
    teacher, path, sha = load_teacher(cfg, device)
    teacher.eval().requires_grad_(False)
    ds, t = cfg.dataset, cfg.train
    torch.manual_seed(cfg.seed)
    tokens = torch.nn.Parameter((torch.randn(num_tokens, ds.num_classes) * 0.01).to(device))
    optimizer = torch.optim.SGD([tokens], lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    view = AugmentedView(build_split(ds, t.split), t.augment, t.crop_size, ds.ignore_index)
    sampler = TrainBatchSampler(len(view), t.batch_size, cfg.seed, iterations, 0)
    loader = make_loader(view, sampler, num_workers=t.num_workers)
    start, last = time.perf_counter(), {}
    for step, (images, labels) in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = LR * (1 - step / iterations) ** POWER
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            logits = teacher(images).logits_low
        out, dice = masked_logits(tokens, logits)
        ce = cross_entropy(out, labels, ds.ignore_index)
        loss = ce + dice
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"MasKD token training diverged at iteration {step} (loss {loss.item()})")
        last = {"ce": ce.item(), "dice": dice.item()}
    meta: dict[str, Any] = {
        "teacher_sha256": sha,
        "teacher_checkpoint": str(path),
        "teacher": cfg.teacher.name,
        "dataset": ds.name,
        "num_classes": ds.num_classes,
        "num_tokens": num_tokens,
        "iterations": iterations,
        "batch_size": t.batch_size,
        "crop_size": t.crop_size,
        "optimizer": {
            "name": "sgd",
            "lr": LR,
            "momentum": MOMENTUM,
            "weight_decay": WEIGHT_DECAY,
            "poly": POWER,
        },
        "seed": cfg.seed,
        "final": last,
        "seconds": round(time.perf_counter() - start, 1),
    }
    out = save_torch_atomic(tokens_path(path, sha), {"tokens": tokens.detach().cpu(), "meta": meta})
    log.info(
        "MasKD tokens for teacher %s on %s (sha256 %s…): %d iterations, CE %.4f, Dice %.4f, saved to %s",
        cfg.teacher.name,
        ds.name,
        sha[:12],
        iterations,
        last.get("ce", float("nan")),
        last.get("dice", float("nan")),
        out,
    )
    return out


def main(args: list[str]) -> None:
    """Tokens on each teacher of ``--part`` (both by default: the full-data teacher's for final runs,
    the tuning teacher's, trained on the tuning-train part, for tuning trials)."""
    from bench.config.compose import load_config
    from bench.teacher import part_overrides, split_part

    part, overrides = split_part(args)
    iterations, rest = split_iterations(overrides)
    for o in part_overrides(rest, part):
        train_tokens(load_config(o), iterations)


def cli() -> None:
    run_cli(main, "run", USAGE, flags=("--part",))


if __name__ == "__main__":
    cli()
