"""Finals on equal terms: each final's composed config, threads and code version against the baseline's.

A study fixes the protocol its trials ran under, but ``make final ARGS=...`` composes each final
anew: a final trained with ``train.iterations=150`` against baseline finals of 8, or evaluated with
``eval.flip=true`` or on fewer images, would compare unequal runs under an ``ok``. At report time
every final's config is compared key by key with its comparison's baseline finals (the one of the
same seed, else the first); apart from the method's own keys (``method.*``, ``teacher.*``), the
tuned values, the seed and keys that do not change what a run computes (``NON_SEMANTIC_KEYS``,
``dataset.root``), every difference is named. The worker's CPU threads (``WORKERS``) are compared
too, and the code version: one commit (and the same uncommitted changes, if any, which the table
shows) for the whole comparison, unless the report is told ``--allow-mixed-code`` (then the table
records and shows the versions instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench.config.schema import NON_SEMANTIC_KEYS

# Keys a method legitimately sets differently from the baseline, or that name places, not content.
OWN_PREFIXES = (
    "method",
    "teacher",
    "seed",
    "dataset.root",
    "student.encoder_weights",  # compared by content below
    "device",  # cuda:0 and cuda:1 are one kind of device: the device's name is compared below
    *NON_SEMANTIC_KEYS,
)
SHOWN = 6  # differences named per row before "and N more"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"iterations": 8}}`` → ``{"train.iterations": 8}`` (lists stay values)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _ignored(key: str, tuned: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in (*OWN_PREFIXES, *tuned))


def comparable(final: dict[str, Any], tuned: Iterable[str]) -> dict[str, Any]:
    """What of a final must equal the baseline's: its config less the method's own and tuned keys,
    the encoder weights by content, its device by name and its CPU threads."""
    tuned = list(tuned)
    config = {k: v for k, v in flatten(final.get("config") or {}).items() if not _ignored(k, tuned)}
    weights = (final.get("config") or {}).get("student", {}).get("encoder_weights")
    sha = final.get("weights_sha256")  # NaN where the report's table mixed rows with and without one
    config["student.encoder_weights"] = sha if isinstance(sha, str) else weights
    config["threads"] = final.get("threads")
    config["device"] = final.get("device_name")
    return config


def _show(value: Any) -> str:
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def differences(
    finals: Sequence[dict[str, Any]], base: Sequence[dict[str, Any]], tuned: Iterable[str]
) -> str:
    """``train.iterations 150 vs the baseline's 8, threads 4 vs 1`` (empty: on equal terms).

    Each final is compared with the baseline final of its seed (else the first baseline final).
    """
    if not base or any(f.get("config") is None for f in [*finals, *base]):
        return ""
    tuned = list(tuned)
    by_seed = {b["seed"]: b for b in base}
    found: dict[str, tuple[set[str], set[str]]] = {}
    for final in finals:
        theirs = comparable(by_seed.get(final["seed"], base[0]), tuned)
        ours = comparable(final, tuned)
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                mine, other = found.setdefault(key, (set(), set()))
                mine.add(_show(ours.get(key)))
                other.add(_show(theirs.get(key)))
    parts = [
        f"{k} {'/'.join(sorted(a))} vs the baseline's {'/'.join(sorted(b))}" for k, (a, b) in found.items()
    ]
    more = f", and {len(parts) - SHOWN} more" if len(parts) > SHOWN else ""
    return ", ".join(parts[:SHOWN]) + more


def among_themselves(finals: Sequence[dict[str, Any]], tuned: Iterable[str]) -> str:
    """Keys on which the finals of one method differ from one another (seed aside)."""
    if len(finals) < 2 or any(f.get("config") is None for f in finals):
        return ""
    tuned = list(tuned)
    views = [comparable(f, tuned) for f in finals]
    keys = sorted({k for v in views for k in v if len({_show(w.get(k)) for w in views}) > 1})
    parts = [f"{k} {'/'.join(sorted({_show(v.get(k)) for v in views}))}" for k in keys]
    more = f", and {len(parts) - SHOWN} more" if len(parts) > SHOWN else ""
    return ", ".join(parts[:SHOWN]) + more


def code_label(finals: Sequence[dict[str, Any]]) -> str:
    """The code versions of some finals, sorted: ``3f2a1b0c9d8e``, ``3f2a1b0c9d8e+changes:1a2b3c4d``
    (uncommitted changes, by the SHA-256 of ``git diff HEAD``), ``unknown`` (not recorded)."""
    seen = set()
    for f in finals:
        label = (f.get("commit") or "unknown")[:12]
        if f.get("dirty"):
            label += f"+changes:{(f.get('diff_sha256') or '?')[:8]}"
        seen.add(label)
    return "; ".join(sorted(seen))


def code_problem(finals: Sequence[dict[str, Any]], comparison: Sequence[dict[str, Any]]) -> str:
    """Why a row's finals are not one code version with the rest of its comparison ("" if they are).

    One version is one commit plus the same uncommitted changes (or none): the table's ``code``
    column and its flags say when a comparison ran from uncommitted changes. Rows that record no
    code version at all (hand-made, or a copy installed without git) are not judged here.
    """
    if all(f.get("commit") is None for f in comparison):
        return ""
    mine, everyone = code_label(finals), code_label(comparison)
    if ";" not in everyone and "unknown" not in everyone and "+changes:?" not in everyone:
        return ""
    if ";" in mine or "unknown" in mine or "+changes:?" in mine:
        return f"code of these finals: {mine} (one code version, or --allow-mixed-code)"
    return f"code {mine} vs the comparison's {everyone} (one code version, or --allow-mixed-code)"
