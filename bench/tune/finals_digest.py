"""The digest of each final's result row, kept with its study (checked by :mod:`bench.report.verify`)."""

from __future__ import annotations

from pathlib import Path

import optuna

from bench.utils.io import sha256_file

DIGEST = "final_sha256:"


def digest_key(budget_tag: str, seed: int) -> str:
    """The study user attribute that holds the SHA-256 of the final at ``budget_tag``, ``seed``."""
    return f"{DIGEST}{budget_tag}/seed{seed}"


def record_digest(study: optuna.Study, result: Path, budget_tag: str, seed: int) -> str:
    """Add the SHA-256 of a final's just-written ``result.json`` to those of its study, budget and
    seed (a final rerun elsewhere, e.g. with another ``tune.finals_dir``, adds its own); returns it."""
    digest = sha256_file(result)
    key = digest_key(budget_tag, seed)
    known = recorded_digests(study, budget_tag, seed)
    if digest not in known:
        study.set_user_attr(key, [*known, digest])
    return digest


def recorded_digests(study: optuna.Study, budget_tag: str, seed: int) -> list[str]:
    value = study.user_attrs.get(digest_key(budget_tag, seed)) or []
    return [value] if isinstance(value, str) else list(value)
