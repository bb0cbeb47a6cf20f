"""Final runs of tuned studies: ``python -m bench.final [method=...] [dataset=...] [tune.final_seeds=3]``."""

from __future__ import annotations

from bench.cli import run_cli

USAGE = """usage: python -m bench.final [--all] [method=<name>] [dataset=...] [key=value ...]

Retrains the best configuration of each study of the dataset × student × teacher group (every
method, or only method=<name>) with seeds 0..tune.final_seeds-1 on the full training split and
evaluates on the validation split; rows go to tune.finals_dir. Finished runs are reused."""


def main(overrides: list[str]) -> None:
    from bench.tune.finals import run_finals

    method = next((o.split("=", 1)[1] for o in overrides if o.startswith("method=")), None)
    rows = run_finals([o for o in overrides if not o.startswith("method=")], method)
    print(f"\n{len(rows)} final runs")


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
