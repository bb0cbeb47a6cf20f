"""Final runs of tuned studies: ``python -m bench.final [method=...] [dataset=...] [--budgets 5,10,20]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.cli import run_cli
from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.workers.processes import Worker

USAGE = """usage: python -m bench.final [--budgets N,N,...] [method=...] [dataset=...] [key=value ...]

Retrains the best configuration of every study in the storage (tune.storage, default: the journal
file results/studies/optuna.journal) with seeds 0..tune.final_seeds-1 on the full training split and
evaluates on the validation split; rows go to tune.finals_dir/<study>/<budget>/seed<s>. dataset=,
student=, teacher=, method= and the budget kind (tune.budget) narrow the selection when given; each
study's final runs compose the config its sweep was run with. Finished runs are reused.

The budget: a study serves every budget as the prefix of its trials. By default each study is
finalised at the largest budget its sweeps asked for; tune.trials=N (tune.seconds=S) picks one, and
--budgets 5,10,20 (or 600s,1200s) finalises each of several budgets in turn."""

SELECTORS = ("dataset", "student", "teacher")
AMOUNT_KEYS = ("tune.trials=", "tune.seconds=")


def study_groups(names: list[str], given: dict[str, str], method: str | None, kind: str | None) -> list[dict]:
    """The dataset × student × teacher × budget-kind groups of the stored studies that match the selection.

    Study names are ``<dataset>/<student>/<teacher or none>/<method>/<budget kind>[/r<repeat>]``; a
    baseline (teacher ``none``) belongs to every teacher of its dataset × student × kind.
    """
    studies = []
    for name in names:
        parts = name.split("/")
        repeat_ok = len(parts) == 5 or (len(parts) == 6 and parts[5].removeprefix("r").isdigit())
        if not repeat_ok or parts[4] not in ("trials", "time"):
            continue  # not a segkd-bench study (or one named before budgets became prefixes)
        studies.append(dict(zip(("dataset", "student", "teacher", "method", "kind"), parts[:5], strict=True)))
    studies = [
        s
        for s in studies
        if all(s[k] == v for k, v in given.items() if k != "teacher")
        and (kind is None or s["kind"] == kind)
        and (method is None or s["method"] == method)
    ]
    groups: dict[tuple, set[str]] = {}
    for s in studies:
        teachers = groups.setdefault((s["dataset"], s["student"], s["kind"]), set())
        if s["teacher"] != "none":
            teachers.add(s["teacher"])
    out = []
    for (dataset, student, group_kind), teachers in sorted(groups.items()):
        wanted = {given["teacher"]} if "teacher" in given else teachers or {None}
        for teacher in sorted(wanted, key=str):
            out.append({"dataset": dataset, "student": student, "teacher": teacher, "kind": group_kind})
    return out


def budget_overrides(label: str) -> list[str]:
    """``trials20`` or ``time3600s`` (labels of ``parse_budgets`` in bench.report.table) as overrides."""
    if label.startswith("trials"):
        return ["tune.budget=trials", f"tune.trials={label[len('trials') :]}"]
    return ["tune.budget=time", f"tune.seconds={label[len('time') :].rstrip('s')}"]


def split_budgets_flag(args: list[str]) -> tuple[list[str], str]:
    """``[..., '--budgets', '5,10', ...]`` (or ``--budgets=5,10``) → (the other arguments, '5,10')."""
    rest, text, it = [], "", iter(args)
    for a in it:
        if a == "--budgets":
            text = next(it, "")
            if not text:
                raise ConfigError("--budgets needs a value, e.g. --budgets 5,10,20 (trials) or 600s,1200s")
        elif a.startswith("--budgets="):
            text = a.split("=", 1)[1]
        else:
            rest.append(a)
    return rest, text


def main(args: list[str]) -> None:
    from bench.workers.processes import requested_workers, standby_workers

    overrides, budgets_text = split_budgets_flag(args)
    # Local workers 1 … N-1 start first, so their imports run while this process imports and composes.
    with standby_workers(requested_workers(overrides) - 1, PRELOAD) as standby:
        _run(overrides, budgets_text, standby)


# What a final-run worker imports before its first run (the model registry imports smp and timm).
PRELOAD = ("bench.tune.finals", "segmentation_models_pytorch")


def _run(overrides: list[str], budgets_text: str, standby: Sequence[Worker]) -> None:
    from bench.config.compose import load_config

    method = next((o.split("=", 1)[1] for o in overrides if o.startswith("method=")), None)
    rest = [o for o in overrides if not o.startswith("method=")]
    given = {k: v for k, _, v in (o.partition("=") for o in rest) if k in SELECTORS}
    cfg = load_config(rest)  # a config error is reported before the trainer's imports

    import optuna

    from bench.report.table import parse_budgets
    from bench.tune import study as st
    from bench.tune.finals import check_final_needs, final_jobs, train_final_jobs

    budgets = parse_budgets(budgets_text)
    kinds = {"time" if b.startswith("time") else "trials" for b in budgets}
    if len(kinds) > 1:
        raise ConfigError(f"--budgets {budgets_text}: mixes trial counts and seconds; give one kind")
    kind_given = any(o.startswith("tune.budget=") for o in rest)
    kind = kinds.pop() if kinds else (cfg.tune.budget if kind_given else None)
    amount_given = any(o.startswith(AMOUNT_KEYS) for o in rest)
    names = optuna.get_all_study_names(st.open_storage(cfg.tune))
    groups = study_groups(names, given, method, kind)
    if not groups:
        what = ", ".join(f"{k}={v}" for k, v in [*given.items(), ("method", method), ("budget", kind)] if v)
        raise ConfigError(
            f"no study{' with ' + what if what else ''} in {st.storage_url_for_log(cfg.tune)}; "
            "run `make baseline` / `make sweep` first"
        )
    jobs, skipped = [], []
    for g in groups:
        selection = [f"{k}={g[k]}" for k in SELECTORS if g[k] is not None]
        for label in budgets or [None]:
            chosen = budget_overrides(label) if label else [f"tune.budget={g['kind']}"]
            at_requested = label is None and not amount_given
            jobs += final_jobs([*rest, *selection, *chosen], method, at_requested, skipped)
    for line in skipped:  # the other studies' finals go ahead
        print(f"skipped {line}", file=sys.stderr)
    if not jobs:
        raise ConfigError(f"no study has a completed trial yet ({len(skipped)} skipped, listed above)")
    check_final_needs(jobs)  # every run's needs, before the first one trains
    rows = train_final_jobs(jobs, cfg, standby)
    print(
        f"\n{len(rows)} final runs" + (f"; {len(skipped)} studies skipped (listed above)" if skipped else "")
    )


def cli() -> None:
    run_cli(main, "run", USAGE, flags=("--budgets",))


if __name__ == "__main__":
    cli()
