"""``make demo``: the whole pipeline on synthetic data, on a CPU, in a few minutes.

1. trains the synthetic teachers (once; later demos reuse them from their keys): the full-data teacher
   for the finals and, per repeat, the tuning teacher trained without that repeat's hold-out,
2. tunes the baseline and each demo method with the same small budget on the tuning split, in two
   independent repeats (``tune.repeats``: own sampler and hold-out seeds per repeat),
3. retrains each study's best configuration over seeds and scores it on the validation split,
4. prints the comparison table (with ``crossover_trials``) and writes results/tables/ and
   results/figures/ (``budget_curves.png``: how much tuning is enough).

The work is shared by ``tune.workers`` processes (default: one per available CPU, at most
:data:`MAX_WORKERS`): the teacher trains beside the baseline's tuning and finals, then the KD
methods' studies and final runs are shared by all workers.

Everything goes to the default locations (``results/studies``, ``results/finals``, ...), so
``make report`` and the notebook work on the demo's results afterwards. Rerunning reuses what is done.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cli import run_cli

if TYPE_CHECKING:
    from bench.config import RunConfig

log = logging.getLogger("bench")

# The KD methods whose tuning fits the demo's 10-minute limit on 2 CPU cores next to the baseline: pixel KD
# and the two whose gains vanish under a tuned baseline (Niemann et al. 2023); see README.
METHODS = ("baseline", "kd", "skd_pair", "ifvd")
# An equal, small budget for every method: two repeats of a short study each.
BUDGET = [
    "tune.trials=4",
    "tune.repeats=2",
    "tune.trial_iterations=100",
    "tune.pruner_startup_trials=2",
    "tune.eval_batch_size=32",  # hold-out validations: 32 of the 64×64 images per forward pass
    "tune.final_seeds=2",
]

RESULTS = Path("results")
# Worker processes (at most; one per available CPU): tuning trials and final runs are shared among
# them, and the teacher trains beside the baseline. Override with tune.workers=N.
MAX_WORKERS = 4

USAGE = """usage: python -m bench.demo [key=value ...]

Overrides apply to every run of the demo (e.g. device=cpu, tune.trials=4)."""


def main(overrides: list[str]) -> None:
    from bench.teacher import teacher_configs
    from bench.utils.devices import available_cpus

    start = time.perf_counter()
    common = ["dataset=synthetic", *BUDGET, f"tune.workers={min(available_cpus(), MAX_WORKERS)}", *overrides]
    # Composed first: a config error is reported before the imports only the runs need.
    # the full-data teacher (the finals') first, then each repeat's tuning teacher (its trials')
    t_cfgs = teacher_configs([*common, "resume=true", "output_dir=results/demo/teacher"])
    t_cfg = t_cfgs[0]

    import matplotlib
    import torch

    from bench.config.budget import Budget
    from bench.report.figures import budget_curves_figure, gaps_figure, save_figure, tuning_curves_figure
    from bench.report.table import (
        COLUMNS,
        budget_curves,
        comparison,
        final_runs,
        flags,
        tuning_curves,
        write_tables,
    )
    from bench.report.tuning_curves import write_curves_table
    from bench.teachers import load_teacher, read_teacher_meta, teacher_path
    from bench.tune.finals import run_finals
    from bench.tune.runner import run_sweeps
    from bench.tune.study import repeat_overrides

    workers = t_cfg.tune.workers
    studies = {
        m: [repeat_overrides([*common, f"method={m}"], r) for r in range(t_cfg.tune.repeats)] for m in METHODS
    }
    path = teacher_path(t_cfg)
    log.info(
        "demo: %d methods × %d repeats on %d worker process(es)", len(METHODS), t_cfg.tune.repeats, workers
    )
    missing = [c for c in t_cfgs if not teacher_path(c).is_file()]
    for c in t_cfgs:
        if c not in missing:
            load_teacher(c, torch.device("cpu"))  # one of an older preset: its error now, not in a KD trial
            log.info("teacher: reusing %s", teacher_path(c))
    if missing and workers > 1:
        # The teachers train in a process of their own while this one tunes and finalises the
        # baseline, which needs no teacher: two single-threaded processes get more from two cores
        # than one process with two threads.
        tune_baseline_beside_teacher(common, missing, studies.pop("baseline"))
    elif missing:
        _train_teachers(missing, None)
    run_sweeps([o for method_studies in studies.values() for o in method_studies])
    log.info("final runs: the best configuration of each study, full training split")
    run_finals(common)
    teacher_miou = read_teacher_meta(path)["metrics"]["miou"]

    matplotlib.use("Agg")
    runs = final_runs(t_cfg.tune.finals_dir)
    runs = runs[runs["method"].isin(METHODS) & (runs["budget"] == Budget.of(t_cfg.tune).label)]
    from bench.report.verify import verify_runs

    verify_runs(runs)
    table = comparison(runs)
    paths = write_tables(table, RESULTS / "tables")
    figures = [
        *save_figure(gaps_figure(table), RESULTS / "figures" / "gaps.png"),
        *save_figure(tuning_curves_figure(tuning_curves(runs)), RESULTS / "figures" / "tuning_curves.png"),
        *save_figure(budget_curves_figure(budget_curves(runs)), RESULTS / "figures" / "budget_curves.png"),
        *write_curves_table(budget_curves(runs), RESULTS / "tables"),
    ]
    repeats = t_cfg.tune.repeats
    print(f"\nsegkd-bench demo: synthetic data, {time.perf_counter() - start:.0f} s, {repeats} repeats")
    print(f"teacher {t_cfg.teacher.name}: val mIoU {teacher_miou:.2f}; students {table['student'].iloc[0]}:")
    shown = table[[*COLUMNS[3:], "budget_check", "extra_dims"]].copy()
    shown["extra_dims"] = shown["extra_dims"].str.replace("method.terms.", "", regex=False)
    print(shown.to_string(index=False, float_format="{:.2f}".format))
    for line in flags(table):
        print(f"flag: {line}")
    print("\n" + "\n".join(f"wrote {p}" for p in [*paths.values(), *figures]))


def tune_baseline_beside_teacher(
    common: list[str], t_cfgs: list[RunConfig], baseline: list[list[str]]
) -> None:
    """Train the teachers in one worker process while this process tunes the baseline's studies and
    trains their finals (one worker each, the CPU threads split between the two)."""
    from bench.tune.finals import run_finals
    from bench.tune.runner import run_sweeps
    from bench.utils.devices import available_cpus, torch_threads
    from bench.workers.processes import start_workers, work_beside

    threads = max(1, available_cpus() // 2)

    def tune_baseline() -> None:
        with torch_threads(threads):
            run_sweeps([[*o, "tune.workers=1"] for o in baseline])
        # the baseline's finals get the threads each KD final gets (the report compares them)
        with torch_threads(max(1, available_cpus() // t_cfgs[0].tune.workers)):
            run_finals([*common, "tune.workers=1"], method="baseline")
        log.info("baseline done; waiting for the teacher")

    teacher = start_workers(_train_teachers, [(t_cfgs, threads)])
    work_beside(teacher, tune_baseline, on_stopped=lambda pids: None)  # its checkpoints stay: resume=true


def _train_teachers(cfgs: list[RunConfig], threads: int | None) -> None:
    """Train the demo's teachers, one after the other (``threads``: in a worker process, with that many
    CPU threads and no progress bar, which would run into the other process's lines)."""
    from dataclasses import replace

    from bench.teacher import train_teacher

    if threads is not None:
        import torch

        from bench.utils.logs import setup_logging

        setup_logging()
        torch.set_num_threads(threads)
    for cfg in cfgs:
        if threads is not None:
            cfg = replace(cfg, progress=False)
        log.info(
            "teacher: training %s on %s (%d steps)",
            cfg.teacher.name,
            str(cfg.train.split),
            cfg.train.iterations,
        )
        train_teacher(cfg)


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
