"""Every study of the storage: ``python -m bench.status [tune.storage=URL]`` (``make status``)."""

from __future__ import annotations

from bench.cli import run_cli

USAGE = """usage: python -m bench.status [tune.storage=URL] [tune.studies_dir=...]

Prints, for every study in the storage (default: the journal file under tune.studies_dir), its
counted / running / stale / failed trials, the best hold-out score so far and an ETA at the pace of
its counted trials with the workers running now. A damaged journal file (a partial last record, e.g.
after a full disk) is reported as DAMAGED, with exit status 1, and left as it is."""


def main(overrides: list[str]) -> None:
    import sys

    from bench.config.compose import load_config
    from bench.tune import study as st
    from bench.tune.journal import inspect
    from bench.tune.status import storage_status

    tune = load_config([*overrides, "output_dir=unused"]).tune
    # a journal file is looked at, not repaired: status must not change what it reports on
    damage = None if tune.storage and "://" in tune.storage else inspect(st.storage_url(tune))
    if damage is not None:
        print(f"storage {st.storage_url_for_log(tune)}: DAMAGED: {damage.describe()}")
        if not damage.tail:
            print("restore it from a backup, or move it away to start new studies")
            sys.exit(1)
        print(
            "the next make sweep / make final backs it up and cuts it at its last complete record; "
            "the studies as its complete records hold them:"
        )
    rows = storage_status(st.open_storage(tune, repair=False), tune.heartbeat_grace)
    print(f"storage {st.storage_url_for_log(tune)}: {len(rows)} studies")
    for row in rows:
        print(row.line())
    if damage is not None:
        sys.exit(1)


def cli() -> None:
    run_cli(main, "run", USAGE)


if __name__ == "__main__":
    cli()
