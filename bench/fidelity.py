"""``make fidelity``: does the short tuning schedule rank configurations as the final schedule does?

For one study (the one the overrides name: dataset, student, teacher, method, budget kind, repeat)
this retrains its k best and k random other completed trials (``tune.fidelity_k``; 2k runs of
``train.iterations`` steps each, priced by ``make plan``) with the **final** schedule on the
**tuning** split (``tune_train``), scored on the same hold-out (``tune_holdout``) as the trials, so
only the schedule changes. It reports:

- **Spearman ρ** between the trials' tuning-schedule hold-out scores and the same configurations'
  final-schedule scores, with a 95% interval from Fisher's z with the Fieller–Hartley–Pearson
  standard error √(1.06 / (n − 3)) (n ≥ 4 configurations; NaN below);
- whether the tuned best (the study's best trial) is still the best at the final schedule.

A ρ below :data:`bench.report.fidelity.RHO_THRESHOLD` (0.5) flags the study: its short schedule
misranks configurations, so the study's best need not be the one that wins at the final schedule.
Pruned trials have no tuning-schedule score and are not retrained. Rows go to
``tune.fidelity_dir/<study>/``, the summary to ``fidelity.json`` beside them, which ``make report``
gathers into ``tables/fidelity.*``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.cli import run_cli
from bench.report.fidelity import SUMMARY, format_summary, summarise

log = logging.getLogger("bench")


USAGE = """usage: python -m bench.fidelity [method=...] [dataset=...] [key=value ...]

Retrains the top tune.fidelity_k and tune.fidelity_k random completed trials of the study the
overrides name at the final schedule (train.iterations) on the tuning split, and prints Spearman ρ
between tuning-schedule and final-schedule hold-out scores with its 95% interval."""


def choose_trials(values: dict[int, float], k: int, seed: int) -> tuple[list[int], list[int]]:
    """The k best trial numbers (by tuning score) and k others drawn at random (seeded)."""
    import numpy as np

    ranked = sorted(values, key=lambda n: (-values[n], n))
    top, rest = ranked[:k], ranked[k:]
    rng = np.random.default_rng(seed)
    random = sorted(int(x) for x in rng.choice(rest, size=min(k, len(rest)), replace=False)) if rest else []
    return top, random


def main(overrides: list[str]) -> None:
    from bench.config.budget import Budget
    from bench.config.compose import load_config

    cfg = load_config(overrides)  # a config error before the trainer's imports

    import optuna
    from optuna.trial import TrialState

    from bench.config.compose import config_hash
    from bench.engine.checkpoint import finished_row
    from bench.engine.trainer import Trainer
    from bench.errors import ConfigError
    from bench.tune import study as st
    from bench.tune.trial_config import trial_config, trial_values
    from bench.utils.io import write_json_atomic

    name = st.study_name(cfg)
    storage = st.open_storage(cfg.tune)
    if name not in optuna.get_all_study_names(storage):
        raise ConfigError(f"no study '{name}' in {st.storage_url_for_log(cfg.tune)}; run its sweep first")
    study = optuna.load_study(study_name=name, storage=storage)
    trials = st.prefix(study, Budget.of(cfg.tune))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    values = dict(
        zip([t.number for t in complete], st.in_percent(study, [t.value for t in complete]), strict=True)
    )
    k = cfg.tune.fidelity_k
    if len(values) < 2 or k < 1:
        raise ConfigError(
            f"study '{name}' has {len(values)} completed trials; fidelity needs at least 2 "
            f"(and tune.fidelity_k ≥ 1, got {k})"
        )
    best = st.best_trial(study, trials).number
    top, random = choose_trials(values, k, cfg.tune.sampler_seed)
    out_root = Path(cfg.tune.fidelity_dir) / name
    study_overrides = study.user_attrs["overrides"]
    final_iterations = load_config(study_overrides).train.iterations
    log.info(
        "fidelity of %s: %d configurations (top %s, random %s) at %d iterations on the tuning split",
        name, len(top) + len(random), top, random, final_iterations,
    )  # fmt: skip
    by_number = {t.number: t for t in trials}
    scores: dict[int, tuple[float, float]] = {}
    for number in [*top, *random]:
        params = by_number[number].params
        run_values = {
            **trial_values(cfg, name, number, params),
            "train.iterations": final_iterations,
            "train.val_interval": 0,
            "output_dir": str(out_root / f"trial_{number:04d}"),
            "resume": True,
        }
        run_cfg = trial_config(study_overrides, run_values)
        row = finished_row(Path(run_cfg.output_dir), config_hash(run_cfg))
        if row is None:
            annotations = {"fidelity": {"study": name, "trial": number, "tuning_score": values[number]}}
            row = Trainer(run_cfg, annotations=annotations, label=f"fidelity trial {number}").fit()
        scores[number] = (values[number], row["metrics"]["miou"])
    summary = summarise(name, best, scores, top)
    write_json_atomic(out_root / SUMMARY, summary)
    print(format_summary(summary))


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
