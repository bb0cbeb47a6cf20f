"""``make rescore``: would the studies' verdict change if nothing had been pruned?

Re-runs every pruned trial of the comparison's studies (the dataset × student × teacher group the
overrides name; ``method=`` narrows it to that method and the baseline) to completion at the tuning
schedule, and prints, per study, the best configuration with and without pruning and, per KD method,
its best hold-out mIoU minus the baseline's both ways (:mod:`bench.tune.rescore`). The price — one
full trial per pruned trial — is printed first; ``--price`` stops there.
"""

from __future__ import annotations

import logging

from bench.cli import run_cli

log = logging.getLogger("bench")

USAGE = """usage: python -m bench.rescore [--price] [method=...] [dataset=...] [key=value ...]

Re-runs the pruned trials of the studies of one dataset × student × teacher (and budget kind; with
method=, that method's studies and the baseline's) to completion at the tuning schedule, and shows
whether the best configuration of each study, and each KD method's lead over the baseline on the
hold-out, change without pruning. The comparison's budget is each study's largest requested one,
or tune.trials= / tune.seconds= when given. --price: print what it would re-run and stop."""


def main(args: list[str]) -> None:
    from bench.config.compose import load_config
    from bench.config.overrides import Overrides

    overrides = [a for a in args if a != "--price"]
    cfg = load_config(overrides)  # a config error before the trainer's imports

    import optuna

    from bench.config.budget import Budget
    from bench.tune import study as st
    from bench.tune.finals import select_studies
    from bench.tune.rescore import format_rescores, prefix_of, price, rescore_study

    given = Overrides(overrides)
    method = cfg.method.name if given.has("method") else None
    budget = Budget.of(cfg.tune) if given.has("tune.trials") or given.has("tune.seconds") else None
    storage = st.open_storage(cfg.tune)
    names = [
        n
        for n in select_studies(cfg, storage, None)
        if method is None or st.StudyName.parse(n).method in (method, "baseline")
    ]
    studies = [optuna.load_study(study_name=n, storage=storage) for n in names]
    todo = [price(s, prefix_of(s, budget)[1]) for s in studies]
    count, seconds = sum(n for n, _ in todo), sum(s for n, s in todo if n)
    print(
        f"re-scoring {len(studies)} studies without pruning: {count} pruned trials to re-run to completion "
        f"(about {seconds:.0f} s of training: one complete trial each, at each study's median)"
    )
    if "--price" in args:
        return
    print(format_rescores([rescore_study(s, cfg, budget) for s in studies]))


def cli() -> None:
    run_cli(main, "run", USAGE, flags=("--price",))


if __name__ == "__main__":
    cli()
