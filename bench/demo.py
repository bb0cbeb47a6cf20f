"""``make demo``: the whole pipeline on synthetic data, on a CPU, in a few minutes.

1. trains the synthetic teacher (once; later demos reuse it from its key),
2. tunes the baseline and each demo method with the same small budget on the tuning split, in two
   independent repeats (``tune.repeats``: own sampler and hold-out seeds per repeat),
3. retrains each study's best configuration over seeds and scores it on the validation split,
4. prints the comparison table (with ``crossover_trials``) and writes results/tables/ and
   results/figures/ (``budget_curves.png``: how much tuning is enough).

Everything goes to the default locations (``results/studies``, ``results/finals``, ...), so
``make report`` and the notebook work on the demo's results afterwards. Rerunning reuses what is done.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bench.cli import run_cli

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

USAGE = """usage: python -m bench.demo [key=value ...]

Overrides apply to every run of the demo (e.g. device=cpu, tune.trials=4)."""


def main(overrides: list[str]) -> None:
    import matplotlib

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
    from bench.teacher import teacher_config, train_teacher
    from bench.teachers import read_teacher_meta, teacher_path
    from bench.tune.finals import run_finals
    from bench.tune.runner import run_sweep
    from bench.tune.study import budget_tag, repeat_overrides

    start = time.perf_counter()
    common = ["dataset=synthetic", *BUDGET, *overrides]
    t_cfg = teacher_config([*common, "resume=true", "output_dir=results/demo/teacher"])
    path = teacher_path(t_cfg)
    if path.is_file():
        log.info("teacher: reusing %s", path)
    else:
        log.info("teacher: training %s (%d steps)", t_cfg.teacher.name, t_cfg.train.iterations)
        train_teacher(t_cfg)
    teacher_miou = 100 * read_teacher_meta(path)["metrics"]["miou"]
    for repeat in range(t_cfg.tune.repeats):
        for method in METHODS:
            log.info("tuning %s (repeat %d)", method, repeat)
            run_sweep(repeat_overrides([*common, f"method={method}"], repeat))
    log.info("final runs: the best configuration of each study, full training split")
    run_finals(common)

    matplotlib.use("Agg")
    runs = final_runs(t_cfg.tune.finals_dir)
    runs = runs[runs["method"].isin(METHODS) & (runs["budget"] == budget_tag(t_cfg.tune))]
    table = comparison(runs)
    paths = write_tables(table, RESULTS / "tables")
    figures = [
        *save_figure(gaps_figure(table), RESULTS / "figures" / "gaps.png"),
        *save_figure(tuning_curves_figure(tuning_curves(runs)), RESULTS / "figures" / "tuning_curves.png"),
        *save_figure(budget_curves_figure(budget_curves(runs)), RESULTS / "figures" / "budget_curves.png"),
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


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
