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
  On a CPU the table also gives the machine's ceiling: W concurrent plain training loops of the
  study's model (:func:`bench.perf.step.plain_step`, no harness), each with its share of the
  CPU threads, against one loop with all of them — the speed-up W workers could reach if trials
  were nothing but training steps.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.demo import BUDGET
from bench.perf.report import Table, device_line, write_table

PHASES = ["compose", "trainer set-up", "training steps", "validation", "result row, checkpoints"]


def study_overrides(tmp: Path, trials: int, extra: Sequence[str]) -> list[str]:
    return [
        "dataset=synthetic",
        "method=baseline",
        # one study of the demo's settings, with the 150-iteration trials (the demo itself
        # now runs 100 to fit two repeats in its time), so figures stay comparable across versions
        *[b for b in BUDGET if not b.startswith(("tune.trials=", "tune.repeats=", "tune.trial_iterations="))],
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


def sweep_seconds(workers: int, trials: int, extra: Sequence[str]) -> tuple[float, int, float]:
    """Wall seconds of ``python -m bench.sweep`` with ``workers`` workers, its counted trials, and
    its trial window: from the first trial's start to the last one's end, as the study records them
    (the sweep's own start and exit left out)."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        args = [*study_overrides(Path(tmp), trials, extra), f"tune.workers={workers}"]
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bench.sweep", *args], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode:
            raise RuntimeError(f"bench.sweep with {workers} workers failed:\n{out.stderr[-2000:]}")
        counted = int(out.stdout.split(" counted trials")[0].rsplit(" ", 1)[-1])
        (journal,) = Path(tmp, "studies").glob("*.journal")
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        (name,) = optuna.get_all_study_names(storage)
        done = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.datetime_complete]
        window = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return wall, counted, window.total_seconds()


# One plain training loop (no harness) of the study's model with N threads: after a warm-up it waits
# for a shared wall-clock start, so that concurrent loops are timed over the same window, then prints
# the steps per second it made in that window.
_PLAIN_LOOP = """
import sys, time, torch
threads, start_at, window, *extra = sys.argv[1:]
torch.set_num_threads(int(threads))
from bench.config import load_config
from bench.perf.step import plain_step, training_images
cfg = load_config(["dataset=synthetic", "method=baseline", "device=cpu", "output_dir=unused",
                   "train.split=tune_train", *extra])
step = plain_step(cfg, *training_images(cfg))
for _ in range(cfg.train.log_interval):
    step()
time.sleep(max(float(start_at) - time.time(), 0.0))
end, steps = float(start_at) + float(window), 0
while time.time() < end:
    step()
    steps += 1
print(steps / float(window))
"""


def plain_loop_speedup(workers: int, extra: Sequence[str], window: float = 10.0) -> tuple[float, float]:
    """ms per step of one plain loop with every CPU thread, and the throughput of ``workers``
    concurrent loops (their share of the threads each) over it, all timed over ``window`` seconds."""
    from bench.utils.devices import available_cpus

    def steps_per_s(threads: list[int]) -> list[float]:
        start_at = time.time() + 30.0  # imports and warm-up of every loop before the window opens
        cmd = [sys.executable, "-c", _PLAIN_LOOP]
        procs = [
            subprocess.Popen(
                [*cmd, str(n), str(start_at), str(window), *extra], stdout=subprocess.PIPE, text=True
            )
            for n in threads
        ]
        outs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError("a plain training loop of the scaling ceiling failed")
        return [float(o.strip().splitlines()[-1]) for o in outs]

    cpus = available_cpus()
    (one,) = steps_per_s([cpus])
    shared = steps_per_s([max(1, cpus // workers)] * workers)
    return 1000 / one, sum(shared) / one


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
    study = [
        o
        for o in study_overrides(Path("."), args.trials, [])
        if o.startswith(("tune.", "method="))
        and not o.startswith(("tune.trials", "tune.final"))
        and "dir=" not in o
    ]
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
        runs: dict[int, list[tuple[float, int, float]]] = defaultdict(list)
        for r in range(args.rounds):
            for w in args.workers:
                runs[w].append(sweep_seconds(w, args.scaling_trials, args.overrides))
                wall, _, window = runs[w][-1]
                print(
                    f"round {r}: {w} worker(s) {wall:.1f} s, trials {window:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
        rate = {w: statistics.median(60 * n / s for s, n, _ in v) for w, v in runs.items()}
        window_rate = {w: statistics.median(60 * n / t for _, n, t in v) for w, v in runs.items()}
        first = args.workers[0]
        notes = [
            device_line(device),
            settings,
            f"median over {args.rounds} alternating round(s); trial window: from the first trial's start to "
            "the last one's end as the study records them (the sweep's start and exit left out)",
        ]
        if device.type == "cpu":
            for w in args.workers[1:]:
                one, speedup = plain_loop_speedup(w, args.overrides)
                notes.append(
                    f"ceiling of this machine: {w} concurrent plain training loops of the model (10 s, "
                    f"their share of the CPU threads each) do {speedup:.2f}× the steps per second of one "
                    f"loop with every thread ({one:.1f} ms/step)"
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
            [
                [
                    str(w),
                    f"{statistics.median(s for s, _, _ in v):.1f}",
                    str(v[0][1]),
                    f"{rate[w]:.2f}",
                    f"{rate[w] / rate[first]:.2f}×",
                    f"{statistics.median(t for _, _, t in v):.1f}",
                    f"{window_rate[w] / window_rate[first]:.2f}×",
                ]
                for w, v in runs.items()
            ],
        )
        write_table(table, args.out, device)
        tables.append(table)
    return tables


if __name__ == "__main__":
    main()
