"""Where the project's config files live; light enough for ``--help`` (no torch, no Hydra).

In a checkout (editable install) ``conf/`` and ``sweeps/`` sit at the repository root; a regular
``pip install`` ships them inside the package as ``bench/conf`` and ``bench/sweeps`` (see
``setup.py``). ``$SEGKD_CONF`` points to another config folder.
"""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR_ENV = "SEGKD_CONF"
_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """``<repo>/<name>`` in a checkout, else the copy installed inside the package."""
    in_checkout = _PACKAGE.parent / name
    return in_checkout if in_checkout.is_dir() else _PACKAGE / name


def conf_dir() -> Path:
    """The Hydra config folder: ``$SEGKD_CONF`` if set, else the project's ``conf/``."""
    from bench.errors import ConfigError

    env = os.environ.get(CONF_DIR_ENV)
    path = Path(env) if env else _shipped("conf")
    if not path.is_dir():
        raise ConfigError(f"config folder {path} not found; set {CONF_DIR_ENV} to the project's conf/ folder")
    return path


def sweeps_dir() -> Path:
    """The search spaces: ``sweeps/`` beside the config folder in use, else the project's own."""
    beside = conf_dir().parent / "sweeps"
    return beside if beside.is_dir() else _shipped("sweeps")
