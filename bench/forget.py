"""Put a study right after a mistake: ``python -m bench.forget failures|study <study name> [key=value ...]``
(``make forget-failures STUDY=…``, ``make forget-study STUDY=…``)."""

from __future__ import annotations

import sys

from bench.cli import run_cli
from bench.errors import ConfigError

USAGE = """usage: python -m bench.forget failures|study <study name> [--yes] [tune.storage=URL] [key=value]

failures: sets aside the study's failed, uncounted trials (a wrong path, missing weights, a config
  error that is now fixed), so tune.max_failed_trials starts again from zero; counted trials and the
  queued replacements stay, and rerunning the same sweep command fills every slot.
study: deletes the study from the storage and its trial folders (tune.trials_dir/<study>), after a
  question (--yes answers it); its finals (tune.finals_dir/<study>) are kept.
The study names are those `make status` lists, e.g. ade20k/deeplabv3_r18/deeplabv3_r101/kd/trials."""

ACTIONS = ("failures", "study")


def main(args: list[str]) -> None:
    yes = "--yes" in args
    words = [a for a in args if "=" not in a and a != "--yes"]
    overrides = [a for a in args if "=" in a]
    if len(words) != 2 or words[0] not in ACTIONS:
        raise ConfigError(
            "name what to forget and the study: python -m bench.forget failures|study <study name> "
            "(make forget-failures STUDY=<name>; make status lists the names)"
        )
    action, name = words
    from bench.config.compose import load_config
    from bench.tune import recovery
    from bench.tune import study as st

    tune = load_config([*overrides, "output_dir=unused"]).tune
    storage = st.open_storage(tune)
    study = recovery.load(storage, name, st.storage_url_for_log(tune))
    if action == "failures":
        numbers = recovery.forget_failures(study)
        counted = len(st.tally(study).counted)
        listed = ", ".join(map(str, numbers)) or "none"
        print(
            f"study {name}: {len(numbers)} failed trials set aside ({listed}); "
            f"{counted} counted trials kept. Rerun the sweep command to go on."
        )
        return
    t = st.tally(study)
    question = (
        f"delete study {name} ({len(t.counted)} counted trials, {len(t.running)} running) from "
        f"{st.storage_url_for_log(tune)} and {tune.trials_dir}/{name}? [y/N] "
    )
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"deleting study {name} needs a yes: add --yes (make forget-study ... YES=1)")
        if input(question).strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return
    folder = recovery.forget_study(storage, name, tune.trials_dir)
    print(
        f"deleted study {name}"
        + (f" and {folder}" if folder else "")
        + f"; its finals (if any) stay under {tune.finals_dir}/{name}"
    )


def cli() -> None:
    run_cli(main, "run", USAGE, flags=("--yes",))


if __name__ == "__main__":
    cli()
