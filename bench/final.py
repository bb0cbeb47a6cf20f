"""Final runs of tuned studies: ``python -m bench.final [method=...] [dataset=...] [tune.final_seeds=3]``."""

from __future__ import annotations

from bench.cli import run_cli
from bench.errors import ConfigError

USAGE = """usage: python -m bench.final [method=...] [dataset=...] [student=...] [teacher=...] [key=value ...]

Retrains the best configuration of every study in the storage (tune.storage, default: the journal
file results/studies/optuna.journal) with seeds 0..tune.final_seeds-1 on the full training split and
evaluates on the validation split; rows go to tune.finals_dir. dataset=, student=, teacher=, method=
and the budget (tune.budget/tune.trials/tune.seconds) narrow the selection when given; each study's
final runs compose the config its sweep was run with. Finished runs are reused."""

SELECTORS = ("dataset", "student", "teacher")
BUDGET_KEYS = ("tune.budget=", "tune.trials=", "tune.seconds=")


def study_groups(
    names: list[str], given: dict[str, str], method: str | None, budget: str | None
) -> list[dict]:
    """The dataset × student × teacher × budget groups of the stored studies that match the selection.

    Study names are ``<dataset>/<student>/<teacher or none>/<method>/<budget>``; a baseline (teacher
    ``none``) belongs to every teacher of its dataset × student × budget.
    """
    studies = [
        dict(zip(("dataset", "student", "teacher", "method", "budget"), n.split("/"), strict=False))
        for n in names
    ]
    studies = [
        s
        for s in studies
        if len(s) == 5
        and all(s[k] == v for k, v in given.items() if k != "teacher")
        and (budget is None or s["budget"] == budget)
        and (method is None or s["method"] == method)
    ]
    groups: dict[tuple, set[str]] = {}
    for s in studies:
        teachers = groups.setdefault((s["dataset"], s["student"], s["budget"]), set())
        if s["teacher"] != "none":
            teachers.add(s["teacher"])
    out = []
    for (dataset, student, tag), teachers in sorted(groups.items()):
        wanted = {given["teacher"]} if "teacher" in given else teachers or {None}
        for teacher in sorted(wanted, key=str):
            out.append({"dataset": dataset, "student": student, "teacher": teacher, "budget": tag})
    return out


def budget_overrides(tag: str) -> list[str]:
    """``trials20`` → the tune.* overrides of that budget (``time3600s`` likewise)."""
    if tag.startswith("trials"):
        return ["tune.budget=trials", f"tune.trials={tag[len('trials') :]}"]
    return ["tune.budget=time", f"tune.seconds={tag[len('time') :].rstrip('s')}"]


def main(overrides: list[str]) -> None:
    import optuna

    from bench.config import load_config
    from bench.tune import study as st
    from bench.tune.finals import run_finals

    method = next((o.split("=", 1)[1] for o in overrides if o.startswith("method=")), None)
    rest = [o for o in overrides if not o.startswith("method=")]
    given = {k: v for k, _, v in (o.partition("=") for o in rest) if k in SELECTORS}
    cfg = load_config(rest)
    budget = st.budget_tag(cfg.tune) if any(o.startswith(BUDGET_KEYS) for o in rest) else None
    names = optuna.get_all_study_names(st.open_storage(cfg.tune))
    groups = study_groups(names, given, method, budget)
    if not groups:
        what = ", ".join(f"{k}={v}" for k, v in [*given.items(), ("method", method), ("budget", budget)] if v)
        raise ConfigError(
            f"no study{' with ' + what if what else ''} in {st.storage_url_for_log(cfg.tune)}; "
            "run `make baseline` / `make sweep` first"
        )
    rows = []
    for g in groups:
        selection = [f"{k}={g[k]}" for k in SELECTORS if g[k] is not None]
        rows += run_finals([*rest, *selection, *budget_overrides(g["budget"])], method)
    print(f"\n{len(rows)} final runs")


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
