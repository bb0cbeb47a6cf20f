"""Optuna studies of the equal-budget protocol: one face over three one-idea modules.

- :mod:`._storage`   where studies live (journal file, database, Redis) and opening it.
- :mod:`._identity`  a study's name, settings and settings hash (what makes two studies comparable).
- :mod:`._budget`    budget accounting: counted trials, slots, prefixes, the requested and realised budget.
- :mod:`._code`      the study's code version: one per study, or an explicit, recorded mix.
- :mod:`._values`    the unit of a study's values (percent; fractions in studies made before).

:func:`open_study` ties them together: create or load a study, checking its settings. Import names
from here (``from bench.tune import study as st``), not from the private modules.
"""

from __future__ import annotations

import optuna

from bench.config.overrides import Overrides
from bench.config.schema import RunConfig
from bench.errors import ConfigError
from bench.tune.space import SearchSpace
from bench.tune.study._budget import (
    ATTEMPT,
    COUNTED_FAILURES,
    DISCARDED,
    EXTERNAL_FAILURES,
    REPLACES,
    REQUESTED,
    SLOT,
    USER_ERROR,
    Tally,
    best_so_far,
    best_trial,
    budget_left,
    budget_met,
    counted_by_slot,
    enqueue_discarded_slots,
    enqueue_missing_replacements,
    enqueue_replacement,
    fail_reason,
    is_counted,
    is_uncounted_failure,
    literature_default,
    over_budget,
    prefix,
    prefix_met,
    record_realised_budget,
    record_requested_budget,
    requested_budget,
    seconds_tolerance,
    slots,
    spent_seconds,
    tally,
)
from bench.tune.study._code import check_code, code_version, mixed_allowed, trial_code, trial_versions
from bench.tune.study._identity import (
    StudyName,
    protocol_hash,
    repeat_overrides,
    settings_hash,
    study_name,
    study_settings,
    teacher_sha256,
    trial_iterations,
    tuning_data,
    val_interval,
)
from bench.tune.study._storage import (
    DRIVERS,
    JOURNAL,
    check_driver,
    connection_lost,
    open_storage,
    storage_url,
    storage_url_for_log,
)
from bench.tune.study._values import VALUE_UNIT, in_percent, record_value_unit, study_value, value_unit
from bench.utils.secrets import mask_url


def open_study(
    cfg: RunConfig, space: SearchSpace, storage: optuna.storages.BaseStorage, overrides: list[str]
) -> optuna.Study:
    """Create the study (trial 0 = the literature default) or load it, checking its settings.

    ``overrides`` (the sweep's command line) are stored so that the finals recompose the same
    protocol; credentials in them are masked. The study's code version is recorded, or this
    worker's checked against it (:func:`check_code`), before any trial.
    """
    name = study_name(cfg)
    settings = study_settings(cfg, space)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get("settings")
    if stored is not None and stored.get("data") and stored.get("data") != settings["data"]:
        raise ConfigError(_other_data(study, stored["data"], cfg))
    check_code(study, cfg.tune, code_version())
    if stored is None:
        record_value_unit(study)  # before the settings: a worker that sees them sees the unit too
        kept = Overrides(overrides).without("tune")
        study.set_user_attr("overrides", [mask_url(o) for o in kept])
        study.set_user_attr("settings", settings)
        study.set_user_attr("settings_hash", settings_hash(settings))
        study.set_user_attr("space_files", space.relative_files())
        study.set_user_attr("data_root", _root(tuning_data(cfg)))  # for messages: not part of identity
        study.enqueue_trial(space.defaults, user_attrs={"literature_default": True}, skip_if_exists=True)
    elif stored != settings:
        changed = sorted(k for k in settings if stored.get(k) != settings[k])
        values = "; ".join(f"{k}: stored {_short(stored.get(k))}, now {_short(settings[k])}" for k in changed)
        raise ConfigError(
            f"study '{name}' already exists with other settings ({values}); a study must keep its "
            "settings to stay comparable — restore them, use another storage (STORAGE=...), or remove "
            f"the study with `make forget-study STUDY={name}`"
        )
    record_requested_budget(study, cfg.tune)
    enqueue_discarded_slots(study, cfg.tune)
    return study


__all__ = [
    "ATTEMPT",
    "COUNTED_FAILURES",
    "DISCARDED",
    "DRIVERS",
    "EXTERNAL_FAILURES",
    "JOURNAL",
    "REPLACES",
    "REQUESTED",
    "SLOT",
    "USER_ERROR",
    "VALUE_UNIT",
    "StudyName",
    "Tally",
    "best_so_far",
    "best_trial",
    "budget_left",
    "budget_met",
    "check_code",
    "check_driver",
    "code_version",
    "connection_lost",
    "counted_by_slot",
    "enqueue_discarded_slots",
    "enqueue_missing_replacements",
    "enqueue_replacement",
    "fail_reason",
    "in_percent",
    "is_counted",
    "is_uncounted_failure",
    "literature_default",
    "mixed_allowed",
    "open_storage",
    "open_study",
    "over_budget",
    "prefix",
    "prefix_met",
    "protocol_hash",
    "record_realised_budget",
    "record_requested_budget",
    "record_value_unit",
    "repeat_overrides",
    "requested_budget",
    "seconds_tolerance",
    "settings_hash",
    "slots",
    "spent_seconds",
    "storage_url",
    "storage_url_for_log",
    "study_name",
    "study_settings",
    "study_value",
    "tally",
    "teacher_sha256",
    "trial_code",
    "trial_iterations",
    "trial_versions",
    "tuning_data",
    "val_interval",
    "value_unit",
]


def _root(data: dict[str, dict]) -> str | None:
    return next((fp["root"] for fp in data.values() if fp.get("root")), None)


def _other_data(study: optuna.Study, stored: dict[str, str], cfg: RunConfig) -> str:
    """The refusal of a worker that reads another copy of the data, naming both fingerprints and roots."""
    from bench.data.fingerprint import short

    here = tuning_data(cfg)
    differ = [s for s in here if stored.get(s) != here[s]["sha256"]]
    theirs = ", ".join(f"{s} {short(stored.get(s))}" for s in differ)
    ours = ", ".join(f"{s} {short(here[s])}" for s in differ)
    return (
        f"study '{study.study_name}' was tuned on other data ({theirs}, read under "
        f"{study.user_attrs.get('data_root') or 'generated data'}); this worker reads {ours} under "
        f"{_root(here) or 'generated data'}: one study, one copy of the data — point dataset.root at the "
        "study's copy, or use another storage (STORAGE=...)"
    )


def _short(value: object, limit: int = 60) -> str:
    """A stored or current setting for a one-line message (long ones, e.g. a search space, cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
