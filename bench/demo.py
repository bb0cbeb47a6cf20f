"""``make demo``: the pipeline on synthetic data, on a CPU, in a few minutes.

Trains the synthetic teacher (once; reused from its key afterwards), a baseline student and a ``kd``
student, and prints their validation mIoU. Runs go to ``results/demo/`` and are reused when the demo
is run again with the same code and config.
"""

from __future__ import annotations

import logging
import time

from bench.cli import run_cli
from bench.config import load_config
from bench.engine.trainer import train_run
from bench.teacher import teacher_config, train_teacher
from bench.teachers import read_teacher_meta, teacher_path

log = logging.getLogger("bench")

USAGE = """usage: python -m bench.demo [key=value ...]

Overrides apply to every run of the demo (e.g. device=cpu)."""


def main(overrides: list[str]) -> None:
    start = time.perf_counter()
    common = ["dataset=synthetic", "resume=true", *overrides]
    t_cfg = teacher_config([*common, "output_dir=results/demo/teacher"])
    path = teacher_path(t_cfg)
    if path.is_file():
        log.info("teacher: reusing %s", path)
        teacher_miou = read_teacher_meta(path)["metrics"]["miou"]
    else:
        log.info("teacher: training %s (%d steps)", t_cfg.teacher.name, t_cfg.train.iterations)
        teacher_miou = train_teacher(t_cfg)["metrics"]["miou"]
    rows = [("teacher", t_cfg.teacher.name, "baseline", teacher_miou)]
    for method in ("baseline", "kd"):
        cfg = load_config([*common, f"method={method}", f"output_dir=results/demo/{method}"])
        log.info("student: training %s with %s (%d steps)", cfg.student.name, method, cfg.train.iterations)
        rows.append(("student", cfg.student.name, method, train_run(cfg)["metrics"]["miou"]))

    print(f"\nsegkd-bench demo: synthetic data, validation split ({time.perf_counter() - start:.0f} s)")
    print(f"  {'role':<8} {'model':<18} {'method':<9} {'mIoU':>6}")
    for role, model, method, miou in rows:
        print(f"  {role:<8} {model:<18} {method:<9} {100 * miou:6.2f}")


if __name__ == "__main__":
    run_cli(main, "run", USAGE)
