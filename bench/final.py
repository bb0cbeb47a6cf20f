"""Final runs of tuned studies: ``python -m bench.final [method=...] [dataset=...] [--budgets 5,10,20]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
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
--budgets 5,10,20 (or 600s,1200s) finalises each of several budgets in turn.

--compute-matched (make final-compute, after make final): each KD study's finals retrain for the
iterations that cost what the baseline's finals cost, iterations × baseline step time / method step
time (measured in their finals), the schedule stretched alike; rows go to results/finals_compute."""

SELECTORS = ("dataset", "student", "teacher")
COMPUTE_FLAG = "--compute-matched"
COMPUTE_DIR = Path("results/finals_compute")


def study_groups(names: list[str], given: dict[str, str], method: str | None, kind: str | None) -> list[dict]:
    """The dataset × student × teacher × budget-kind groups of the stored studies that match the selection.

    Study names are ``<dataset>/<student>/<teacher or none>/<method>/<budget kind>[/r<repeat>]``; a
    baseline (teacher ``none``) belongs to every teacher of its dataset × student × kind.
    """
    from bench.tune.study import StudyName

    studies = []
    for name in names:
        parsed = StudyName.parse(name)
        if parsed is None:
            continue  # not a segkd-bench study (or one named before budgets became prefixes)
        studies.append({k: getattr(parsed, k) for k in ("dataset", "student", "teacher", "method", "kind")})
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


def split_budgets_flag(args: list[str]) -> tuple[list[str], str]:
    """``[..., '--budgets', '5,10', ...]`` (or ``--budgets=5,10``) → (the other arguments, '5,10')."""
    rest, text, it = [], "", iter(args)
    for a in it:
        if a == "--budgets":
            text = next(it, "")
            if not text:
                raise ConfigError("--budgets needs a value, e.g. --budgets 5,10,20 (trials) or 600s,1200s")
        elif a.startswith("--budgets="):
            text = a.removeprefix("--budgets=")
        else:
            rest.append(a)
    return rest, text


def main(args: list[str]) -> None:
    from bench.workers.processes import requested_workers, standby_workers

    overrides, budgets_text = split_budgets_flag(args)
    if COMPUTE_FLAG in overrides:  # compute-matched finals (bench.tune.compute_match): one process
        _run([o for o in overrides if o != COMPUTE_FLAG], budgets_text, (), compute_matched=True)
        return
    # Local workers 1 … N-1 start first, so their imports run while this process imports and composes.
    with standby_workers(requested_workers(overrides) - 1, PRELOAD) as standby:
        _run(overrides, budgets_text, standby)


# What a final-run worker imports before its first run (the model registry imports smp and timm).
PRELOAD = ("bench.tune.finals", "segmentation_models_pytorch")


def _run(
    overrides: list[str], budgets_text: str, standby: Sequence[Worker], compute_matched: bool = False
) -> None:
    from bench.config.compose import load_config
    from bench.config.overrides import Overrides

    everything = Overrides(overrides)
    method = everything.get("method")
    rest = everything.without("method", below=False)
    given = {k: rest.get(k) for k in SELECTORS if rest.has(k)}
    cfg = load_config(rest)  # a config error is reported before the trainer's imports

    import optuna

    from bench.report.table import parse_budgets
    from bench.tune import study as st
    from bench.tune.compute_match import run_compute_matched
    from bench.tune.finals import run_finals

    budgets = parse_budgets(budgets_text)
    kinds = {b.kind for b in budgets}
    if len(kinds) > 1:
        raise ConfigError(f"--budgets {budgets_text}: mixes trial counts and seconds; give one kind")
    kind = kinds.pop() if kinds else (cfg.tune.budget if rest.has("tune.budget") else None)
    amount_given = rest.has("tune.trials") or rest.has("tune.seconds")
    names = optuna.get_all_study_names(st.open_storage(cfg.tune))
    groups = study_groups(names, given, method, kind)
    if not groups:
        what = ", ".join(f"{k}={v}" for k, v in [*given.items(), ("method", method), ("budget", kind)] if v)
        raise ConfigError(
            f"no study{' with ' + what if what else ''} in {st.storage_url_for_log(cfg.tune)}; "
            "run `make baseline` / `make sweep` first"
        )
    rows = []
    for g in groups:
        selection = [f"{k}={g[k]}" for k in SELECTORS if g[k] is not None]
        for budget in budgets or [None]:
            chosen = budget.overrides() if budget else [f"tune.budget={g['kind']}"]
            at_requested = budget is None and not amount_given
            if compute_matched:
                rows += run_compute_matched([*rest, *selection, *chosen], method, COMPUTE_DIR, at_requested)
            else:
                rows += run_finals([*rest, *selection, *chosen], method, at_requested, standby)
    print(f"\n{len(rows)} final runs")


def cli() -> None:
    run_cli(main, "run", USAGE, flags=("--budgets", COMPUTE_FLAG))


if __name__ == "__main__":
    cli()
