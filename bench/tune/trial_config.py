"""A trial's config: the study's config, composed once per process, plus the trial's own values.

Hydra composition (search path, defaults lists, schema registration) costs about a second per call,
and merging into the schemas about 80 ms; a study composes its overrides and merges them into the
schemas once per process (:func:`bench.config.compose.typed`, unresolved), and every trial sets its
values on a copy of that, which type-checks them, before the same resolution and checks as
:func:`bench.config.compose.load_config` (≈ 12 ms). The result equals composing the study's overrides
followed by the trial's ``key=value`` overrides (tested, interpolations included), because a trial
only sets config values, never group choices.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config import RunConfig
from bench.config.compose import compose_raw, error_text, finish, typed
from bench.errors import ConfigError
from bench.tune import study as st

_COMPOSED: dict[tuple[str, ...], DictConfig] = {}


def trial_values(cfg: RunConfig, study_name: str, number: int, params: dict[str, Any]) -> dict[str, Any]:
    """Everything a trial sets on top of the study's own overrides, as ``{dotted key: value}``.

    Hold-out validations score ``tune.eval_batch_size`` images at a time, by default
    ``max(eval.batch_size, train.batch_size)``: the tuning hold-out is carved from the training
    split, whose images the trial already batches (inference keeps no activations for backward).
    """
    out_dir = Path(cfg.tune.trials_dir) / study_name / f"trial_{number:04d}"
    batch = cfg.tune.eval_batch_size or max(
        cfg.eval.batch_size, params.get("train.batch_size", cfg.train.batch_size)
    )
    return {
        **params,
        "train.split": "tune_train",
        "eval.split": "tune_holdout",
        "eval.batch_size": batch,
        "train.iterations": st.trial_iterations(cfg),
        "train.val_interval": st.val_interval(cfg),
        "train.checkpoint_interval": 0,
        "output_dir": str(out_dir),
        "resume": False,
        "progress": False,
        "logger.group": study_name,  # a tracking tool shows a study's trials together
    }


def study_config(study_overrides: Sequence[str]) -> RunConfig:
    """The study's own config (``load_config`` of its overrides), its composition kept for its trials."""
    return trial_config(study_overrides, {})


def trial_config(study_overrides: Sequence[str], values: dict[str, Any]) -> RunConfig:
    """The study's composed config (cached per process) with ``values`` set, validated."""
    key = tuple(study_overrides)
    if key not in _COMPOSED:
        _COMPOSED[key] = typed(compose_raw(study_overrides))
    merged = copy.deepcopy(_COMPOSED[key])
    try:
        for dotted, value in values.items():
            OmegaConf.update(merged, dotted, value, merge=False)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot set a trial's value: {error_text(e)}") from None
    return finish(merged)
