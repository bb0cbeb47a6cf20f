"""The unit of a study's values (hold-out mIoU): percent, recorded on the study when it is created.

A study created before the unit was recorded holds fractions of 1 and keeps them (its sampler and
pruner compare values within the study, so one unit per study): its workers tell Optuna fractions,
and whatever reads its values for a user converts them (:func:`in_percent`).
"""

from __future__ import annotations

import optuna

from bench.utils.units import FRACTION, PERCENT, from_percent, to_percent

VALUE_UNIT = "value_unit"  # study user attribute


def record_value_unit(study: optuna.Study) -> None:
    """Mark a new study's values as percent (done once, when it is created)."""
    study.set_user_attr(VALUE_UNIT, PERCENT)


def value_unit(study: optuna.Study) -> str:
    """``percent``, or ``fraction`` for a study created before the unit was recorded."""
    return study.user_attrs.get(VALUE_UNIT, FRACTION)


def in_percent(study: optuna.Study, values: list[float | None]) -> list[float | None]:
    """The study's ``values`` (trial values, intermediate values) in percent."""
    unit = value_unit(study)
    return [to_percent(v, unit) for v in values]


def study_value(study: optuna.Study, percent: float) -> float:
    """A score in percent in the unit of the study's values (what Optuna is told)."""
    return from_percent(percent, value_unit(study))
