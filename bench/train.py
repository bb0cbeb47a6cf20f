"""Train one run: ``python -m bench.train [key=value ...]`` (``make train``)."""

from __future__ import annotations

import logging

from bench.cli import run_cli

log = logging.getLogger("bench")

USAGE = """usage: python -m bench.train [--cfg] [key=value ...]

Trains the student on the dataset with the method's loss, evaluates it on eval.split and writes
<output_dir>/result.json. Example: python -m bench.train method=kd train.iterations=500 seed=1"""


def main(overrides: list[str]) -> None:
    from bench.config.compose import load_config

    cfg = load_config(overrides, "run")  # a config error is reported before the trainer's imports

    from bench.preflight import check_writable, warn_random_init

    check_writable(cfg.output_dir)  # before the model is built: an output folder it cannot make is one line
    warn_random_init(cfg)

    from bench.engine.trainer import train_run

    row = train_run(cfg)
    log.info(
        "%s %s/%s seed %d: %s mIoU %.2f  (result: %s/result.json)",
        cfg.method.name,
        cfg.dataset.name,
        cfg.student.name,
        cfg.seed,
        row["split"],
        row["metrics"]["miou"],
        cfg.output_dir,
    )


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
