"""Run configuration schemas, the lowest floor: typed dataclasses that every layer reads.

Composing a config (Hydra, validated against the registries' own config classes) sits above the
registries, in :mod:`bench.config.compose` (``from bench.config.compose import load_config``).
:mod:`.overrides` and :mod:`.budget` are the value types of a command line's overrides and of a
tuning budget.
"""

from bench.config.schema import (
    AugmentConfig,
    DatasetConfig,
    EvalConfig,
    MethodConfig,
    ModelConfig,
    RunConfig,
    TeacherConfig,
    TermConfig,
    TrainConfig,
)

__all__ = [
    "AugmentConfig",
    "DatasetConfig",
    "EvalConfig",
    "MethodConfig",
    "ModelConfig",
    "RunConfig",
    "TeacherConfig",
    "TermConfig",
    "TrainConfig",
]
