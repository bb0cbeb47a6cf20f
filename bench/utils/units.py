"""The one unit of every score a user reads: mIoU (and aAcc, mAcc, per-class IoU) in percent.

Result rows, trackers, logs, tables, figures and the Optuna values of studies made since the unit
was fixed hold percent (41.23, not 0.4123). What was written before in fractions of 1 says so
(``"metrics_unit": "fraction"`` in a row; no ``value_unit`` attribute on a study; no ``metrics_unit``
at all in the oldest rows) and is read through :func:`to_percent`, keyed on that recorded unit.
"""

from __future__ import annotations

PERCENT = "percent"
FRACTION = "fraction"
_SCALE = {PERCENT: 1.0, FRACTION: 100.0}  # what turns a value of the unit into percent


def _scale(unit: str) -> float:
    if unit not in _SCALE:
        raise ValueError(f"unknown score unit {unit!r}: expected one of {sorted(_SCALE)}")
    return _SCALE[unit]


def to_percent(value: float | None, unit: str) -> float | None:
    """``value``, recorded in ``unit`` (``percent`` or ``fraction``), in percent; None stays None."""
    scale = _scale(unit)
    if value is None or scale == 1.0:
        return value
    return value * scale


def from_percent(value: float | None, unit: str) -> float | None:
    """A percent ``value`` in ``unit`` (how a study made in fractions keeps one unit in its values)."""
    scale = _scale(unit)
    if value is None or scale == 1.0:
        return value
    return value / scale


def list_to_percent(values: list[float | None] | None, unit: str) -> list[float | None] | None:
    """:func:`to_percent` of each item (None items and a None list stay None)."""
    if values is None:
        return None
    return [to_percent(v, unit) for v in values]
