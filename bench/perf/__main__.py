"""``make perf``: every throughput benchmark of the harness in one command.

``python -m bench.perf [--skip step trials kd data] [--compile] [--kd-batch 2] [--out results/perf]``

Sections, each in a fresh interpreter (so caches and imports start cold as in a real worker):

(a) ``bench.perf.step``: the harness's training step against a plain PyTorch loop of the same model
    and batch, images/s and model FLOP utilisation (CUDA: fp32, bf16 + channels_last, and with
    ``--compile`` ``train.compile=true``);
(b, c) ``bench.perf.trials``: trial overhead by phase for the demo's study, and worker scaling
    (trials per minute with 1 and 2 workers);
(d) ``bench.perf.kd`` (every KD term at the CIRKD shape, batch ``--kd-batch``) and the synthetic
    training loader (``bench.perf.data.measure``) against the step time measured in (a).

Every table is printed with its settings and written to ``<out>/<name>_<device>.{md,csv}``; all of
them together to ``<out>/perf_<device>.md``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.perf.report import Table, device_line, write_table
from bench.utils.io import write_text_atomic

SECTIONS = ("step", "trials", "kd", "data")


def run(module: str, *args: str) -> None:
    print(f"\n$ python -m {module} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True)


def data_table(step_ms: float | None, device: torch.device, out: Path) -> Table:
    """The demo's training loader (synthetic, as a trial loads it), cold and with renders cached."""
    from bench.config.compose import load_config
    from bench.perf.data import measure

    cfg = load_config(["dataset=synthetic", "output_dir=unused", "train.split=tune_train"])
    rows = []
    for label in ("first pass (renders)", "cached renders"):
        r = measure(cfg, cfg.train.num_workers, 20)
        keeps_up = "–" if step_ms is None else ("yes" if r["ms_per_batch"] <= step_ms else "no")
        rows.append([label, f"{r['images_per_s']:.0f}", f"{r['ms_per_batch']:.1f}", keeps_up])
    table = Table(
        "data",
        "Input pipeline of the demo's trials (synthetic, tune_train split) against the step time of (a)",
        [
            "pass",
            "images/s",
            "ms/batch",
            "keeps up with the step of (a)" + ("" if step_ms is None else f", {step_ms:.1f} ms"),
        ],
        [
            device_line(device),
            f"batch {cfg.train.batch_size}, train.num_workers={cfg.train.num_workers}, "
            "20 batches after warm-up",
        ],
        rows,
    )
    write_table(table, out, device)
    return table


def harness_ms(out: Path, device: torch.device) -> float | None:
    path = out / f"step_{device.type}.csv"
    if not path.is_file():
        return None
    with path.open() as f:
        return float(next(csv.DictReader(f))["harness ms"])


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.splitlines()[0])
    p.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    p.add_argument("--compile", action="store_true", help="also time train.compile=true in (a)")
    p.add_argument(
        "--kd-batch", type=int, default=2, help="batch of the KD-term table (the issue's shape: 2)"
    )
    p.add_argument("--out", type=Path, default=Path("results/perf"))
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = str(args.out)
    if "step" not in args.skip:
        run("bench.perf.step", "--out", out, *(["--compile"] if args.compile else []))
    if "trials" not in args.skip:
        run("bench.perf.trials", "--out", out)
    if "kd" not in args.skip:
        run("bench.perf.kd", "--batch", str(args.kd_batch), "--out", out)
    if "data" not in args.skip:
        data_table(harness_ms(args.out, device), device, args.out)
    parts = [
        f"step_{device.type}",
        f"trial_overhead_{device.type}",
        f"worker_scaling_{device.type}",
        f"kd_{device.type}_b{args.kd_batch}_64x128",
        f"data_{device.type}",
    ]
    texts = [(args.out / f"{name}.md").read_text() for name in parts if (args.out / f"{name}.md").is_file()]
    summary = args.out / f"perf_{device.type}.md"
    write_text_atomic(summary, f"# `make perf` on {device_line(device)}\n\n" + "\n".join(texts))
    print(f"\nwritten: {summary} (and each table's .md/.csv in {out}/)")


if __name__ == "__main__":
    main()
