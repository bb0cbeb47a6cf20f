"""Data and code identity of a comparison: every row on one copy of the data, every study on one code.

- **Data.** Each final records the fingerprint of each split it read (``data`` in its row,
  :mod:`bench.data.fingerprint`) and each study the fingerprints of its tuning splits (``settings.data``).
  A method whose finals or study read other data than the baseline's — e.g. a copy with the
  validation images copied into ``train`` — is named in ``budget_check`` (``data differs: train
  1a2b3c4d5e6f vs the baseline's 5e6f7a8b9c0d``); so are finals of one method on different data. The
  fingerprints leave the root out: the same data at another path is the same data. Rows of an older
  version record none and are not judged here.
- **Code.** Each study's counted trials record the code version that ran them (``code_versions``, see
  :mod:`bench.tune.study._code`); a study of several (let in by ``tune.allow_mixed_code=true``) is
  flagged, or with ``make report ARGS=--allow-mixed-code`` shown in the ``code`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHORT = 12


def _fp(data: Any) -> str:
    """The short fingerprint of one split as a row records it (``unknown``: not recorded)."""
    digest = data.get("sha256") if isinstance(data, dict) else data
    return str(digest)[:SHORT] if digest else "unknown"


def _splits(final: dict[str, Any]) -> dict[str, str] | None:
    data = final.get("data")
    return None if not data else {split: _fp(fp) for split, fp in data.items()}


def _compare(ours: dict[str, str], theirs: dict[str, str], found: dict[str, tuple[set, set]]) -> None:
    for split in sorted(set(ours) | set(theirs)):
        a, b = ours.get(split, "unknown"), theirs.get(split, "unknown")
        if a != b:
            mine, other = found.setdefault(split, (set(), set()))
            mine.add(a)
            other.add(b)


def data_differences(
    finals: Sequence[dict[str, Any]],
    base: Sequence[dict[str, Any]],
    settings: dict[str, Any],
    base_settings: dict[str, Any],
) -> str:
    """``train 1a2b… vs the baseline's 5e6f…, tune_train …`` ("" when every split matches).

    Each final is compared with the baseline final of its seed (else the first), the study's tuning
    splits with the baseline study's. A side that records no fingerprint while the other does is a
    difference (``unknown``); when neither does there is nothing to compare.
    """
    found: dict[str, tuple[set, set]] = {}
    by_seed = {b.get("seed"): b for b in base}
    for final in finals:
        other = by_seed.get(final.get("seed"), base[0] if base else None)
        ours, theirs = _splits(final), _splits(other or {})
        if ours is not None or theirs is not None:
            _compare(ours or {}, theirs or {}, found)
    tuned, base_tuned = settings.get("data"), base_settings.get("data")
    if tuned or base_tuned:
        _compare(
            {s: _fp(v) for s, v in (tuned or {}).items()},
            {s: _fp(v) for s, v in (base_tuned or {}).items()},
            found,
        )
    return ", ".join(
        f"{split} {'/'.join(sorted(a))} vs the baseline's {'/'.join(sorted(b))}"
        for split, (a, b) in found.items()
    )


def data_among_themselves(finals: Sequence[dict[str, Any]]) -> str:
    """Splits on which the finals of one method read different data (``train 1a2b…/5e6f…``)."""
    views = [_splits(f) for f in finals]
    if len(finals) < 2 or all(v is None for v in views):
        return ""
    views = [v or {} for v in views]
    splits = sorted({s for v in views for s in v})
    parts = []
    for split in splits:
        seen = {v.get(split, "unknown") for v in views}
        if len(seen) > 1:
            parts.append(f"{split} {'/'.join(sorted(seen))}")
    return ", ".join(parts)


def against_study(finals: Sequence[dict[str, Any]], settings: dict[str, Any]) -> str:
    """Splits a method's finals read other data in than its study recorded (``train 1a2b… vs the
    study's 5e6f…``): tuned on one copy, retrained on another."""
    recorded = {s: _fp(v) for s, v in (settings.get("data") or {}).items()}
    found: dict[str, tuple[set, set]] = {}
    for final in finals:
        ours = _splits(final) or {}
        _compare(
            {s: v for s, v in ours.items() if s in recorded},
            {s: recorded[s] for s in ours if s in recorded},
            found,
        )
    return ", ".join(
        f"{s} {'/'.join(sorted(a))} vs the study's {'/'.join(sorted(b))}" for s, (a, b) in found.items()
    )


def study_code(tuning: dict[str, Any]) -> str:
    """``the study's trials ran 2 code versions (A; B)`` ("" for one version, or none recorded)."""
    versions = tuning.get("code_versions") or []
    if len(versions) < 2:
        return ""
    return (
        f"the study's trials ran {len(versions)} code versions ({'; '.join(versions)}), let in by "
        "tune.allow_mixed_code (one code version, or --allow-mixed-code)"
    )
