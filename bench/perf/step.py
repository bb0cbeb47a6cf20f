"""The harness's training step against a plain PyTorch loop of the same model, batch and loss.

``python -m bench.perf.step [--steps N] [--rounds R] [--device auto] [--compile] [key=value ...]``

Both sides train the run config's student (default: the demo's ``deeplabv3_tiny`` on synthetic data,
batch 8) with the same optimizer, CE + aux CE loss and precision; the harness through
:class:`~bench.engine.trainer.Trainer` (its data pipeline, loss bookkeeping, scheduler, NaN watch),
the plain loop on the training images pre-stacked in memory (random batches, random h-flip). Runs
alternate (harness, plain, harness, …) and each side's median over rounds is reported: ms per step
after one logging interval of warm-up, images/s, and model FLOP utilisation — the model's FLOPs per
training step (forward + backward, :class:`torch.utils.flop_counter.FlopCounterMode`) per second,
over the FLOP/s of a large dense matrix product measured here in the same dtype (the attainable
peak of this device, not a datasheet figure). On CUDA the variants are fp32, bf16 + channels_last
and, with ``--compile``, bf16 + channels_last + ``train.compile=true``.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

from bench.cli import answer_help

answer_help(__name__, __doc__.strip())  # before torch: --help answers at once

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.config import RunConfig
from bench.config.compose import load_config
from bench.data.splits import build_split
from bench.engine.optim import build_optimizer
from bench.engine.step import PRECISIONS
from bench.engine.trainer import Trainer
from bench.models import build_model
from bench.perf.report import Table, device_line, write_table
from bench.utils.runtime import resolve_device, seed_everything

DEFAULTS = ["dataset=synthetic", "student=deeplabv3_tiny", "method=baseline", "device=auto"]


@dataclass
class Variant:
    name: str
    overrides: list[str]


def variants(device: torch.device, compile_: bool) -> list[Variant]:
    if device.type != "cuda":
        out = [Variant("fp32", [])]
        if compile_:
            out.append(Variant("fp32 compile", ["train.compile=true"]))
        return out
    fast = ["train.precision=bf16", "train.channels_last=true"]
    out = [Variant("fp32", ["train.precision=fp32"]), Variant("bf16 channels_last", fast)]
    if compile_:
        out.append(Variant("bf16 channels_last compile", [*fast, "train.compile=true"]))
    return out


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    """FLOP/s of an ``n×n`` matrix product in ``dtype`` (median of 5 after warm-up)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(7):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def harness_step_ms(cfg: RunConfig) -> float:
    """The Trainer's own ``step_time_ms`` (log intervals after the first; its data pipeline included)."""
    return Trainer(cfg).fit()["cost"]["step_time_ms"]


def plain_loop_ms(cfg: RunConfig, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """ms per step of a hand-written loop (same warm-up as the harness) and the model FLOPs per step."""
    device = resolve_device(cfg.device)
    step = plain_step(cfg, images, labels)
    t = cfg.train
    for _ in range(t.log_interval):  # warm-up, as the harness's first (untimed) log interval
        step()
    _sync(device)
    start = time.perf_counter()
    timed = t.iterations - t.log_interval
    for _ in range(timed):
        step()
    _sync(device)
    ms = 1000 * (time.perf_counter() - start) / timed
    with FlopCounterMode(display=False) as counter:
        step()
    return ms, float(counter.get_total_flops())


def plain_step(cfg: RunConfig, images: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """One training step of a hand-written loop: the run's student, optimizer, CE + aux CE and
    precision, on random batches (random h-flip) of ``images`` held on the device."""
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed, cfg.train.deterministic)
    t = cfg.train
    model = build_model(cfg.student, cfg.dataset.num_classes).to(device)
    fmt = torch.channels_last if t.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    forward = torch.compile(model) if t.compile else model
    optimizer = build_optimizer([{"params": list(model.parameters()), "lr_mult": 1.0}], t.optimizer)
    dtype = PRECISIONS[t.precision]
    images, labels = images.to(device), labels.to(device)
    ignore = cfg.dataset.ignore_index
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        idx = torch.randint(0, images.shape[0], (t.batch_size,), generator=g).to(device)
        x, y = images[idx], labels[idx]
        flip = (torch.rand(t.batch_size, generator=g) < 0.5).to(device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x).contiguous(memory_format=fmt)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = forward(x)
            size = y.shape[-2:]
            loss = F.cross_entropy(
                F.interpolate(out.logits_low.float(), size, mode="bilinear"), y, ignore_index=ignore
            )
            if out.aux_logits is not None:
                aux = F.interpolate(out.aux_logits.float(), size, mode="bilinear")
                loss = loss + t.aux_weight * F.cross_entropy(aux, y, ignore_index=ignore)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def training_images(cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    data = build_split(cfg.dataset, cfg.train.split)
    samples = [data[i] for i in range(len(data))]
    return torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.perf.step", description=__doc__.splitlines()[0])
    p.add_argument(
        "--steps", type=int, default=60, help="training steps per run (first log interval: warm-up)"
    )
    p.add_argument("--rounds", type=int, default=3, help="alternating harness/plain runs; medians reported")
    p.add_argument("--compile", action="store_true", help="also time train.compile=true")
    p.add_argument("--out", type=Path, default=Path("results/perf"))
    p.add_argument("overrides", nargs="*", help="run config overrides (default: the demo's student)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Table:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    base = [
        *DEFAULTS,
        f"train.iterations={args.steps}",
        "train.log_interval=10",
        "train.val_interval=0",
        "train.checkpoint_interval=0",
        "progress=false",
        "eval.max_images=8",
        *args.overrides,
    ]
    probe = load_config([*base, "output_dir=unused"])
    device = resolve_device(probe.device)
    images, labels = training_images(probe)
    table = Table(
        "step",
        f"Training step: harness vs plain PyTorch loop ({probe.student.name}, {probe.dataset.name}, batch "
        f"{probe.train.batch_size}, {args.steps} steps of which {probe.train.log_interval} warm-up, "
        f"median of {args.rounds} alternating rounds)",
        ["variant", "harness ms", "plain ms", "harness / plain", "images/s", "GFLOP/step", "FLOP util"],
        [
            device_line(device),
            "FLOP util: model FLOP/s ÷ FLOP/s of a 2048² matmul in the same dtype on "
            "this device (torch.utils.flop_counter)",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants(device, args.compile):
            harness, plain, flops = [], [], 0.0
            for r in range(args.rounds):
                cfg = load_config([*base, *variant.overrides, f"output_dir={tmp}/{variant.name}/{r}"])
                harness.append(harness_step_ms(cfg))
                ms, flops = plain_loop_ms(cfg, images, labels)
                plain.append(ms)
                print(
                    f"{variant.name} round {r}: harness {harness[-1]:.1f} ms, plain {ms:.1f} ms",
                    file=sys.stderr,
                )
            h, p = statistics.median(harness), statistics.median(plain)
            dtype = PRECISIONS[cfg.train.precision] or torch.float32
            peak = matmul_flops_per_s(device, dtype)
            table.rows.append(
                [
                    variant.name,
                    f"{h:.1f}",
                    f"{p:.1f}",
                    f"{h / p:.2f}",
                    f"{cfg.train.batch_size / h * 1000:.1f}",
                    f"{flops / 1e9:.2f}",
                    f"{flops / (h / 1000) / peak:.1%}",
                ]
            )
    write_table(table, args.out, device)
    return table


if __name__ == "__main__":
    main()
