"""``make demo``: the whole pipeline on synthetic data, on a CPU, in a few minutes.

1. trains the synthetic teacher (once; later demos reuse it from its key),
2. tunes the baseline and each demo method with the same small budget on the tuning split,
3. retrains each study's best configuration over seeds and scores it on the validation split,
4. prints the comparison table and writes results/tables/ and results/figures/.

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
# An equal, small budget for every method: a CPU-minute per study.
BUDGET = [
    "tune.trials=6",
    "tune.trial_iterations=150",
    "tune.pruner_startup_trials=2",
    "tune.eval_batch_size=32",  # hold-out validations: 32 of the 64×64 images per forward pass
    "tune.final_seeds=3",
]

RESULTS = Path("results")

USAGE = """usage: python -m bench.demo [key=value ...]

Overrides apply to every run of the demo (e.g. device=cpu, tune.trials=4)."""


def main(overrides: list[str]) -> None:
    import matplotlib

    from bench.report.figures import gaps_figure, save_figure, tuning_curves_figure
    from bench.report.table import COLUMNS, comparison, final_runs, flags, tuning_curves, write_tables
    from bench.teacher import teacher_config, train_teacher
    from bench.teachers import read_teacher_meta, teacher_path
    from bench.tune.finals import run_finals
    from bench.tune.runner import run_sweep

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
    for method in METHODS:
        log.info("tuning %s", method)
        run_sweep([*common, f"method={method}"])
    log.info("final runs: the best configuration of each study, seeds 0..2, full training split")
    run_finals(common)

    matplotlib.use("Agg")
    runs = final_runs(t_cfg.tune.finals_dir)
    runs = runs[runs["method"].isin(METHODS)]
    table = comparison(runs)
    paths = write_tables(table, RESULTS / "tables")
    figures = [
        save_figure(gaps_figure(table), RESULTS / "figures" / "gaps.png"),
        save_figure(tuning_curves_figure(tuning_curves(runs)), RESULTS / "figures" / "tuning_curves.png"),
    ]
    print(f"\nsegkd-bench demo: synthetic data, {time.perf_counter() - start:.0f} s")
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
