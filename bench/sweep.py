"""Tune one method with the equal budget: ``python -m bench.sweep method=kd dataset=... [tune.*=...]``."""

from __future__ import annotations

from bench.cli import run_cli
from bench.errors import ConfigError
from bench.tune import study as st
from bench.tune.runner import run_sweep

USAGE = """usage: python -m bench.sweep [--cfg] method=<name> [dataset=...] [key=value ...]

Tunes the method's search space (sweeps/train/<dataset>/..., sweeps/method/<method>.yaml) on the
tuning split with the budget in tune.* (trials or time), storing the study in tune.storage (default:
the journal file results/studies/optuna.journal). Rerunning resumes the study and tops it up (a
study has no trial count in its name: tune.trials=30 after 20 extends it). tune.repeats=R runs R
independent studies (own sampler and hold-out seeds); tune.repeat=r runs only repeat r."""


def main(overrides: list[str]) -> None:
    """Every repeat of the study (``tune.repeats``; only ``tune.repeat=r`` when given), one after another.

    To run repeats concurrently, start one command per repeat with ``tune.repeat=r`` (any machine
    on the same STORAGE), each with its WORKERS.
    """
    from bench.config import load_config

    tune = load_config(overrides).tune
    given = any(o.lstrip("+").startswith("tune.repeat=") for o in overrides)
    for repeat in [tune.repeat] if given else range(tune.repeats):
        report(run_sweep(st.repeat_overrides(overrides, repeat)))


def report(sweep) -> None:
    tally = st.tally(sweep.study)
    print(
        f"\nstudy {sweep.name}: {len(tally.counted)} counted trials, {tally.seconds:.0f} s of training, "
        f"{tally.uncounted_failures} uncounted failures"
    )
    try:
        best = st.best_trial(sweep.study, st.prefix(sweep.study, st.budget_amount(sweep.cfg.tune)))
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
        )
        print(f"best: trial {best.number}, hold-out mIoU {100 * best.value:.2f} ({params})")
    except ConfigError as e:  # no completed trial yet
        print(f"no completed trial ({e})")


if __name__ == "__main__":
    run_cli(main, "run", USAGE)
