"""A study's code version: one study, one code — or an explicit, recorded mix.

A clone at another commit (say with the KD loss multiplied by 0) could add trials to a study, and
its best trial would then come from other code. So a study records the code version of the worker
that created it (study attribute ``code``); every worker checks its own against it before its first
trial and is refused, naming both versions, when they differ — unless ``tune.allow_mixed_code=true``,
which records the joining version in the study (``code_mixed``). Every trial records the version
that ran it (trial attribute ``code``); the finals copy the versions of the counted trials
(``code_versions``) and the report flags a study of several.

A version is the code's content: the SHA-256 of the ``bench`` package's Python files and the config
files (relative path and bytes of each), shown with the commit and the uncommitted changes that
:func:`bench.results.git_state` records for every row, e.g. ``3f2a1b0c9d8e+changes:1a2b3c4d (code
5e6f7a8b9c0d)``. The same files are the same version whatever the folder, clone, commit or install
(a copy without git included); a changed file, committed or not, is another version.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import optuna

import bench
from bench.config.schema import TuneConfig
from bench.errors import ConfigError
from bench.paths import conf_dir
from bench.results import git_state

log = logging.getLogger("bench")

CODE = "code"  # study attribute: the creating worker's version; trial attribute: the running worker's
MIXED = "code_mixed"  # study attribute: versions that joined under tune.allow_mixed_code=true
SHORT = 12


def code_version(package: Path | None = None, conf: Path | None = None) -> dict[str, Any]:
    """This process's code version: ``{"sha256", "commit", "dirty", "diff_sha256", "label"}``."""
    package = Path(package or Path(bench.__file__).resolve().parent)
    conf = Path(conf or conf_dir())
    return dict(_version(package, conf))


@lru_cache(maxsize=8)
def _version(package: Path, conf: Path) -> tuple[tuple[str, Any], ...]:
    h = hashlib.sha256()
    for base, pattern, tag in ((package, "*.py", "bench"), (conf, "*.yaml", "conf")):
        for path in sorted(base.rglob(pattern)):
            if "__pycache__" in path.parts:
                continue
            h.update(f"{tag}/{path.relative_to(base).as_posix()}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    git = git_state(package.parent)
    version = {"sha256": h.hexdigest(), **git}
    version["label"] = label(version)
    return tuple(version.items())


def label(version: dict[str, Any]) -> str:
    """``3f2a1b0c9d8e+changes:1a2b3c4d (code 5e6f7a8b9c0d)``; ``no git (code …)`` outside a checkout."""
    commit = (version.get("commit") or "no git")[:SHORT]
    if version.get("dirty"):
        commit += f"+changes:{(version.get('diff_sha256') or '?')[:8]}"
    return f"{commit} (code {str(version.get('sha256'))[:SHORT]})"


def check_code(study: optuna.Study, tune: TuneConfig, version: dict[str, Any]) -> None:
    """Record the study's code version (new study) or check this worker's against it.

    A worker of other code is refused with one line naming both versions, unless
    ``tune.allow_mixed_code``: then its version is added to the study's ``code_mixed`` list (which the
    finals copy and the report flags) and a warning says so. A study created before studies
    recorded their code takes this worker's version from now on.
    """
    stored = study.user_attrs.get(CODE)
    if stored is None:
        study.set_user_attr(CODE, version)
        return
    if stored.get("sha256") == version["sha256"]:
        return
    name = study.study_name
    if not tune.allow_mixed_code:
        raise ConfigError(
            f"study '{name}' runs code {stored.get('label') or label(stored)}; this worker runs "
            f"{version['label']}: one study, one code version — run this worker from the study's code, "
            f"start the study anew (`make forget-study STUDY={name}`), or pass tune.allow_mixed_code=true "
            "(recorded in the study, flagged by the report)"
        )
    mixed = list(study.user_attrs.get(MIXED) or [])
    if version["label"] not in mixed:
        study.set_user_attr(MIXED, [*mixed, version["label"]])
    log.warning(
        "study '%s' runs code %s; this worker runs %s (tune.allow_mixed_code=true: recorded, and the "
        "report flags the mix)",
        name,
        stored.get("label") or label(stored),
        version["label"],
    )


def trial_code(version: dict[str, Any]) -> dict[str, str]:
    """What a trial records of the version that ran it (trial attribute ``code``)."""
    return {"sha256": version["sha256"], "label": version["label"]}


def trial_versions(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    """The code versions that ran ``trials`` (one label per content), sorted; trials of older versions
    record none."""
    seen: dict[str, str] = {}
    for t in trials:
        code = t.user_attrs.get(CODE) or {}
        if code.get("sha256"):
            seen.setdefault(code["sha256"], code.get("label") or code["sha256"][:SHORT])
    return sorted(seen.values())


def mixed_allowed(study: optuna.Study) -> list[str]:
    """Versions that joined ``study`` under ``tune.allow_mixed_code=true`` (empty: none)."""
    return list(study.user_attrs.get(MIXED) or [])
