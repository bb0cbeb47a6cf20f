"""Shared plumbing of the ``python -m bench.<command>`` entry points.

Arguments are Hydra overrides (``key=value``, ``group=option``, ``+new.key=value``). ``--cfg`` prints
the composed config and exits; ``--help`` lists the config groups and their options. User errors
(:class:`~bench.errors.BenchError`) print one message and exit with status 2; Ctrl-C exits with 130,
SIGTERM with 143.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from omegaconf import OmegaConf

from bench.config.compose import compose_raw, conf_dir
from bench.errors import BenchError
from bench.tune.processes import exit_status, raise_on_sigterm


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="[%(name)s] %(message)s", stream=sys.stderr)
    for noisy in ("timm", "urllib3", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def config_groups() -> str:
    lines = []
    for group in sorted(p for p in conf_dir().iterdir() if p.is_dir()):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(f"  {group.name:<8} {', '.join(options)}")
    return "\n".join(lines)


def run_cli(
    main: Callable[[list[str]], None], config_name: str, usage: str, argv: Sequence[str] | None = None
) -> None:
    """Parse ``argv``, handle --help/--cfg, run ``main(overrides)`` and turn user errors into messages."""
    args = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    raise_on_sigterm()
    try:
        if {"-h", "--help"} & set(args):
            print(
                f"{usage}\n\nConfig groups (pick one with group=option):\n{config_groups()}\n\n"
                "Any key can be set with key=value; --cfg prints the composed config."
            )
            return
        if "--cfg" in args:
            print(
                OmegaConf.to_yaml(compose_raw([a for a in args if a != "--cfg"], config_name), resolve=True)
            )
            return
        main(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:  # Ctrl-C: 130; SIGTERM: 143
        print(f"\n{e or 'interrupted'}", file=sys.stderr)
        sys.exit(exit_status(e))
