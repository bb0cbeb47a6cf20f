"""Shared plumbing of the entry points (``python -m bench.<command>`` and the ``segkd-*`` scripts).

Arguments are Hydra overrides (``key=value``, ``group=option``, ``+new.key=value``). ``--cfg`` (Hydra's
``--cfg job`` too) prints the composed config and exits; ``--help`` lists the config groups and their
options. Hydra's multirun (``-m``) is refused: tuning goes through ``make sweep``. User errors
(:class:`~bench.errors.BenchError`) print one message and exit with status 2; Ctrl-C exits with 130,
SIGTERM with 143.

This module imports neither torch nor Hydra, and the entry points import their heavy modules inside
``main``, so ``--help`` answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench.errors import DISK_ERRNOS, BenchError, unwritable_message
from bench.paths import conf_dir
from bench.utils.logs import setup_logging
from bench.utils.signals import exit_status, raise_on_sigterm, skip_final_collection

MULTIRUN_FLAGS = {"-m", "--multirun"}
HELP_FLAGS = {"-h", "--help"}
# What Hydra's own `--cfg` takes; segkd-bench has no Hydra runtime config, so all three print the job's.
CFG_PARTS = {"job", "all", "hydra"}


def config_groups() -> str:
    lines = []
    for group in sorted(p for p in conf_dir().iterdir() if p.is_dir()):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(f"  {group.name:<8} {', '.join(options)}")
    return "\n".join(lines)


def help_text(usage: str) -> str:
    """What ``--help`` prints for a config command: its usage, the config groups and the key=value rule."""
    return (
        f"{usage}\n\nConfig groups (pick one with group=option):\n{config_groups()}\n\n"
        "Any key can be set with key=value; --cfg prints the composed config."
    )


def answer_help(module: str, text: str) -> None:
    """``python -m <module> --help``: print ``text`` and exit, called at the top of a module whose
    imports are heavy (torch), before them, so ``--help`` answers at once and needs no torch."""
    if module == "__main__" and HELP_FLAGS & set(sys.argv[1:]):
        print(text)
        sys.exit(0)


def cfg_request(args: list[str]) -> list[str] | None:
    """The overrides when ``args`` ask for ``--cfg [job|all|hydra]``, else None."""
    if "--cfg" not in args:
        return None
    i = args.index("--cfg")
    skip = {i, i + 1} if i + 1 < len(args) and args[i + 1] in CFG_PARTS else {i}
    return [a for j, a in enumerate(args) if j not in skip]


def refuse_flags(args: Sequence[str]) -> None:
    """Hydra habits that make no sense here get a message instead of an override parse error."""
    if MULTIRUN_FLAGS & set(args):
        raise BenchError(
            "multirun (-m) is not supported: a run trains one config. To tune, run a study with "
            "`make sweep METHOD=<name>` (python -m bench.sweep); for several seeds, `make final`"
        )
    unknown = [a for a in args if a.startswith("--")]
    if unknown:
        raise BenchError(
            f"unknown option {unknown[0]}; options: --help, --cfg. Everything else is key=value "
            "(see --help for the config groups)"
        )


def run_cli(
    main: Callable[[list[str]], None],
    config_name: str,
    usage: str,
    argv: Sequence[str] | None = None,
    flags: Sequence[str] = (),
) -> None:
    """Parse ``argv``, handle --help/--cfg, run ``main(overrides)`` and turn user errors into messages.

    ``flags`` are the extra ``--options`` the command accepts itself (they reach ``main``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    skip_final_collection()
    setup_logging()
    raise_on_sigterm()
    try:
        if HELP_FLAGS & set(args):
            print(help_text(usage))
            return
        cfg_overrides = cfg_request(args)
        if cfg_overrides is not None:
            cfg_overrides = [a for a in cfg_overrides if a.split("=", 1)[0] not in flags]  # the command's own
            from omegaconf import OmegaConf

            from bench.config.compose import compose_raw

            refuse_flags(cfg_overrides)
            print(OmegaConf.to_yaml(compose_raw(cfg_overrides, config_name), resolve=True))
            return
        refuse_flags([a for a in args if a.split("=", 1)[0] not in flags])
        main(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a read-only, full or misplaced output folder: the user's to fix
        if e.errno not in DISK_ERRNOS:
            raise
        print(f"error: {unwritable_message(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:  # Ctrl-C: 130; SIGTERM: 143
        print(f"\n{e or 'interrupted'}", file=sys.stderr)
        sys.exit(exit_status(e))
