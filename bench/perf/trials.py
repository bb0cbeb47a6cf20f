"""Tuning throughput: where a trial's wall time goes, and how trials per minute scale with workers.

``python -m bench.perf.trials [--trials 4] [--scaling-trials 8] [--workers 1 2] [--rounds 3]
[--skip-overhead] [--skip-scaling] [key=value ...]``

Both run the demo's baseline study (:data:`bench.demo.BUDGET`: deeplabv3_tiny on synthetic data; the issue's
150-iteration trials) in a fresh temporary study, results and journal storage.

- **Overhead by phase** (this process, one worker, started cold like a worker process): the
  functions of each phase are wrapped with timers — compose (the trial's config), Trainer set-up,
  training steps (the Trainer's own ``train_seconds``: steps, data loading, loss bookkeeping),
  validations (intermediate and final), result row and checkpoints, Optuna (ask, tell, sampler,
  pruner, progress: the worker loop minus its trials) and the rest of each trial. Overhead is
  everything but the training steps, as a share of the worker loop's wall time. The worker's
  one-off start (imports in a fresh interpreter, opening the study) is reported apart.
- **Worker scaling**: ``python -m bench.sweep`` with ``tune.workers=W`` as a user runs it (fresh
  interpreter, worker processes, imports included), timed from start to exit; counted trials per
  minute and the speed-up over the first ``--workers`` value, both also over the trial window alone
  (first trial start to last trial end, from the study's own records). Runs alternate between worker counts.
  On a CPU the table also gives a reference: W independent one-worker sweeps side by side, each
  pinned to its 1/W of the CPUs (:func:`sweep_seconds` with ``pinned``), each doing the one-worker
  study's trials, pruning included — the trials split over the CPUs with nothing shared.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

from bench.cli import answer_help

answer_help(__name__, __doc__.strip())  # before torch: --help answers at once

import argparse
import contextlib
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from bench.config.overrides import Overrides
from bench.demo import BUDGET
from bench.perf.report import Table, device_line, write_table

PHASES = ["compose", "trainer set-up", "training steps", "validation", "result row, checkpoints"]


def study_overrides(tmp: Path, trials: int, extra: Sequence[str]) -> list[str]:
    return [
        "dataset=synthetic",
        "method=baseline",
        # one study of the demo's settings, with the 150-iteration trials (the demo itself
        # now runs 100 to fit two repeats in its time), so figures stay comparable across versions
        *Overrides(BUDGET).without("tune.trials", "tune.repeats", "tune.trial_iterations"),
        "tune.trial_iterations=150",
        f"tune.trials={trials}",
        f"tune.studies_dir={tmp}/studies",  # the default journal storage lives here
        f"tune.trials_dir={tmp}/trials",
        f"tune.finals_dir={tmp}/finals",
        *extra,
    ]


@contextlib.contextmanager
def _timed(owner: Any, name: str, totals: dict[str, float], phase: str) -> Iterator[None]:
    original: Callable = getattr(owner, name)
    stored = inspect.getattr_static(owner, name)  # restored as stored: a classmethod stays one

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, stored)


def overhead(trials: int, extra: Sequence[str]) -> tuple[dict[str, float], float, list[float]]:
    """Seconds per phase, the worker loop's wall time and each trial's training seconds."""
    from bench.engine import trainer as tr
    from bench.tune import runner

    totals: dict[str, float] = defaultdict(float)
    trainers: list[Any] = []
    init = tr.Trainer.__init__

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        trainers.append(self)

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        tr.Trainer.__init__ = tracked_init  # type: ignore[method-assign]
        stack.callback(setattr, tr.Trainer, "__init__", init)
        for owner, name, phase in [
            (runner, "trial_config", "compose"),
            (tr.Trainer, "__init__", "trainer set-up"),
            (tr.Trainer, "validate", "validation"),
            (tr, "write_row", "result row, checkpoints"),
            (tr, "save_torch_atomic", "result row, checkpoints"),
            (tr, "save_checkpoint", "result row, checkpoints"),
            (runner.Sweep, "run_trial", "trial"),
            (runner.Sweep, "run_worker", "worker loop"),
            (runner.Sweep, "open", "open study"),
        ]:
            stack.enter_context(_timed(owner, name, totals, phase))
        runner.run_sweep(study_overrides(Path(tmp), trials, extra))
    train = [t.train_seconds for t in trainers]
    totals["training steps"] = sum(train)
    return totals, totals["worker loop"], train


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import bench.tune.runner; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _study_window(studies_dir: Path) -> tuple[datetime, datetime]:
    """The first trial's start and the last one's end, as the study in ``studies_dir`` records them."""
    import optuna

    (journal,) = studies_dir.glob("*.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    (name,) = optuna.get_all_study_names(storage)
    done = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.datetime_complete]
    return min(t.datetime_start for t in done), max(t.datetime_complete for t in done)


# `python -m bench.sweep ARGS` pinned to the CPUs in argv[1] (its torch threads follow the affinity).
_PINNED_SWEEP = (
    "import os, runpy, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv.pop(1).split(',')}); "
    "runpy.run_module('bench.sweep', run_name='__main__', alter_sys=True)"
)


def sweep_seconds(
    workers: int, trials: int, extra: Sequence[str], pinned: int = 0
) -> tuple[float, int, float]:
    """Wall seconds of ``python -m bench.sweep`` with ``workers`` workers, its counted trials, and
    its trial window: from the first trial's start to the last one's end, as the study records them
    (the sweep's own start and exit left out).

    With ``pinned = P > 1``: P independent one-worker sweeps (own study, same settings) side by side,
    each pinned to its 1/P of the CPUs — what P workers would do if the one-worker study's trials
    were split over the CPUs with no shared study and nothing to coordinate. Wall, counted trials and
    window then cover all P (from the first start to the last end). Each process writes its output to
    files, so that none waits on a full pipe while another is read."""
    if pinned > 1:
        cpus = sorted(os.sched_getaffinity(0))
        share = len(cpus) // pinned
        if share < 1:
            raise ValueError(f"{pinned} pinned sweeps need as many CPUs; this process has {len(cpus)}")
        groups = [",".join(map(str, cpus[i * share : (i + 1) * share])) for i in range(pinned)]
    with contextlib.ExitStack() as stack:
        tmps = [Path(stack.enter_context(tempfile.TemporaryDirectory())) for _ in range(max(pinned, 1))]
        cmds = [
            [sys.executable, "-m", "bench.sweep"]
            if pinned <= 1
            else [sys.executable, "-c", _PINNED_SWEEP, groups[i]]
            for i in range(len(tmps))
        ]
        logs = [
            (stack.enter_context(open(t / "out", "w+")), stack.enter_context(open(t / "err", "w+")))
            for t in tmps
        ]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*cmd, *study_overrides(tmp, trials, extra), f"tune.workers={workers}"],
                stdout=out,
                stderr=err,
            )
            for cmd, tmp, (out, err) in zip(cmds, tmps, logs, strict=True)
        ]
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - start
        for proc, tmp in zip(procs, tmps, strict=True):
            if proc.returncode:
                err = (tmp / "err").read_text()[-2000:]
                raise RuntimeError(f"bench.sweep with {workers} workers failed:\n{err}")
        counted = sum(
            int((tmp / "out").read_text().split(" counted trials")[0].rsplit(" ", 1)[-1]) for tmp in tmps
        )
        windows = [_study_window(tmp / "studies") for tmp in tmps]
    window = max(end for _, end in windows) - min(first for first, _ in windows)
    return wall, counted, window.total_seconds()


def scaling_rows(
    runs: dict[str, list[tuple[float, int, float]]], references: set[str], first: str
) -> tuple[list[list[str]], float]:
    """The scaling table's rows from each setup's rounds of (wall s, counted trials, trial window s),
    medians, speed-ups over the ``first`` setup; and that setup's median seconds outside its trials.

    A reference (W pinned one-worker sweeps) runs W × the trials, so its own start to exit shares one
    start among more trials; its start-to-exit entry is derived instead, ``(F + T) / (F + T / s)``,
    with F and T the first setup's time outside and inside its trial window and s the reference's
    speed-up over that window."""
    rate = {k: statistics.median(60 * n / s for s, n, _ in v) for k, v in runs.items()}
    window_rate = {k: statistics.median(60 * n / t for _, n, t in v) for k, v in runs.items()}
    fixed = statistics.median(s - t for s, _, t in runs[first])
    one_window = statistics.median(t for _, _, t in runs[first])
    rows = []
    for label, v in runs.items():
        window_speedup = window_rate[label] / window_rate[first]
        if label in references:
            derived = (fixed + one_window) / (fixed + one_window / window_speedup)
            whole = ["—", str(v[0][1]), "—", f"{derived:.2f}× (derived)"]
        else:
            wall = statistics.median(s for s, _, _ in v)
            whole = [f"{wall:.1f}", str(v[0][1]), f"{rate[label]:.2f}", f"{rate[label] / rate[first]:.2f}×"]
        rows.append([label, *whole, f"{statistics.median(t for _, _, t in v):.1f}", f"{window_speedup:.2f}×"])
    return rows, fixed


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.perf.trials", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4, help="trials of the overhead study (the demo's: 4)")
    p.add_argument("--scaling-trials", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3, help="alternating runs per worker count (median)")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--out", type=Path, default=Path("results/perf"))
    p.add_argument("overrides", nargs="*", help="config overrides for both studies (e.g. device=cpu)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Table]:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device(
        "cuda" if torch.cuda.is_available() and "device=cpu" not in args.overrides else "cpu"
    )
    study = (
        Overrides(study_overrides(Path("."), args.trials, []))
        .only("method", "tune")
        .without("tune.trials", "tune.final_seeds", "tune.studies_dir", "tune.trials_dir", "tune.finals_dir")
    )
    settings = (
        f"the demo's baseline study (one repeat): {', '.join(study)}; overrides: {args.overrides or 'none'}"
    )
    tables = []
    if not args.skip_overhead:
        totals, wall, train = overhead(args.trials, args.overrides)
        trials_wall = totals["trial"]
        inside = sum(totals[p] for p in PHASES)
        rows = [[p, f"{totals[p]:.2f}", f"{totals[p] / wall:.1%}"] for p in PHASES]
        rows += [
            ["rest of the trials", f"{trials_wall - inside:.2f}", f"{(trials_wall - inside) / wall:.1%}"],
            [
                "Optuna (ask, tell, sampler, pruner, progress)",
                f"{wall - trials_wall:.2f}",
                f"{(wall - trials_wall) / wall:.1%}",
            ],
            [
                "**overhead (all but training steps)**",
                f"{wall - totals['training steps']:.2f}",
                f"**{1 - totals['training steps'] / wall:.1%}**",
            ],
        ]
        table = Table(
            "trial_overhead",
            f"Trial overhead by phase: {args.trials} trials, one worker, {wall:.1f} s in the worker loop",
            ["phase", "seconds", "share of wall"],
            [
                device_line(device),
                settings,
                f"training seconds per trial: {', '.join(f'{s:.1f}' for s in train)} (the first renders the "
                "synthetic images; later trials reuse them)",
                f"worker start, not in the table: imports {import_seconds():.1f} s in a fresh interpreter, "
                f"opening the study {totals['open study']:.2f} s",
            ],
            rows,
        )
        write_table(table, args.out, device)
        tables.append(table)
    if not args.skip_scaling:
        first = args.workers[0]
        # what each row runs: (workers per sweep, pinned sweeps side by side); on a CPU the reference
        # rows run W one-worker sweeps, each on its 1/W of the CPUs (needs W ≤ the CPUs)
        setups = {str(w): (w, 0) for w in args.workers}
        if device.type == "cpu" and hasattr(os, "sched_setaffinity"):
            cpus = len(os.sched_getaffinity(0))
            setups |= {f"{w} × 1 pinned (reference)": (1, w) for w in args.workers if 1 < w <= cpus}
        runs: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
        for r in range(args.rounds):
            for label, (w, pinned) in setups.items():
                runs[label].append(sweep_seconds(w, args.scaling_trials, args.overrides, pinned))
                wall, _, window = runs[label][-1]
                print(f"round {r}: {label}: {wall:.1f} s, trials {window:.1f} s", file=sys.stderr, flush=True)
        rows, fixed = scaling_rows(runs, {k for k, (_, pinned) in setups.items() if pinned > 1}, str(first))
        notes = [
            device_line(device),
            settings,
            f"median over {args.rounds} alternating round(s); trial window: from the first trial's start to "
            "the last one's end as the study records them (the sweep's start and exit left out)",
        ]
        if len(setups) > len(args.workers):
            notes.append(
                "reference rows: W independent one-worker sweeps of the same settings side by side "
                "(own studies), each pinned to 1/W of the CPUs (its torch threads follow) and doing the "
                "one-worker study's trials, its pruning included: those trials split over the CPUs, nothing "
                "shared or coordinated; below W× by the speed-up a second thread gives one trial and by "
                "contention. A W-worker sweep prunes differently (its pruner sees other trials), so it can "
                f"do less or more work. Start to exit is derived: the {fixed:.1f} s that one worker spends "
                "outside its trials (imports, compose, exit) plus its trial window at the "
                "reference's speed-up"
            )
        table = Table(
            "worker_scaling",
            f"Worker scaling: {args.scaling_trials} trials, `bench.sweep tune.workers=W`, start to exit",
            [
                "workers",
                "wall s",
                "counted trials",
                "trials/min",
                f"speed-up over {first}",
                "trial window s",
                f"speed-up over {first}, trial window",
            ],
            notes,
            rows,
        )
        write_table(table, args.out, device)
        tables.append(table)
    return tables


if __name__ == "__main__":
    main()
