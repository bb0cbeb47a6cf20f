"""Every study of the storage: ``python -m bench.status [tune.storage=URL]`` (``make status``)."""

from __future__ import annotations

from bench.cli import run_cli

USAGE = """usage: python -m bench.status [tune.storage=URL] [tune.studies_dir=...]

Prints, for every study in the storage (default: the journal file under tune.studies_dir), its
counted / running / stale / failed trials, the best hold-out score so far and an ETA at the pace of
its counted trials with the workers running now."""


def main(overrides: list[str]) -> None:
    from bench.config.compose import load_config
    from bench.tune import study as st
    from bench.tune.status import storage_status

    tune = load_config([*overrides, "output_dir=unused"]).tune
    rows = storage_status(st.open_storage(tune), tune.heartbeat_grace)
    print(f"storage {st.storage_url_for_log(tune)}: {len(rows)} studies")
    for row in rows:
        print(row.line())


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
