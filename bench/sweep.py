"""Tune one method with the equal budget: ``python -m bench.sweep method=kd dataset=... [tune.*=...]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.cli import run_cli
from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.tune.runner import Sweep

USAGE = """usage: python -m bench.sweep [--cfg] method=<name> [dataset=...] [key=value ...]

Tunes the method's search space (sweeps/train/<dataset>/..., sweeps/method/<method>.yaml) on the
tuning split with the budget in tune.* (trials or time), storing the study in tune.storage (default:
the journal file results/studies/optuna.journal). Rerunning resumes the study and tops it up (a
study has no trial count in its name: tune.trials=30 after 20 extends it). tune.repeats=R runs R
independent studies (own sampler and hold-out seeds); tune.repeat=r runs only repeat r."""


def main(overrides: list[str]) -> None:
    """Every repeat of the study (``tune.repeats``; only ``tune.repeat=r`` when given), concurrently:
    the WORKERS (or Slurm jobs) work on all repeats, each starting on its own and moving on.

    Several commands may share the work (any machine on the same STORAGE), e.g. one per repeat
    with ``tune.repeat=r``.
    """
    from bench.workers.processes import requested_workers, standby_workers

    # Local workers 1 … N-1 start first, so their imports run while this process imports and composes.
    with standby_workers(requested_workers(overrides) - 1, PRELOAD) as standby:
        from bench.config.compose import load_config
        from bench.config.overrides import Overrides

        tune = load_config(overrides).tune  # a config error is reported before the trainer's imports

        from bench.tune import study as st
        from bench.tune.runner import run_sweeps

        given = Overrides(overrides).has("tune.repeat")
        repeats = [tune.repeat] if given else range(tune.repeats)
        for sweep in run_sweeps([st.repeat_overrides(overrides, r) for r in repeats], standby):
            report(sweep)


# What a sweep worker imports before its first trial (the model registry imports smp and timm).
PRELOAD = ("bench.tune.runner", "segmentation_models_pytorch")


def report(sweep: Sweep) -> None:
    from bench.config.budget import Budget
    from bench.tune import study as st

    tally = st.tally(sweep.study)
    print(
        f"\nstudy {sweep.name}: {len(tally.counted)} counted trials, {tally.seconds:.0f} s of training, "
        f"{tally.uncounted_failures} uncounted failures"
    )
    try:
        best = st.best_trial(sweep.study, st.prefix(sweep.study, Budget.of(sweep.cfg.tune)))
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
        )
        (score,) = st.in_percent(sweep.study, [best.value])
        print(f"best: trial {best.number}, hold-out mIoU {score:.2f} ({params})")
    except ConfigError as e:  # no completed trial yet
        print(f"no completed trial ({e})")


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
