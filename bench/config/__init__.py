"""Run configuration: schemas (:mod:`.schema`) and Hydra composition (:mod:`.compose`)."""

from bench.config.compose import compose_raw, conf_dir, config_hash, load_config, to_dict, validate
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
    "compose_raw",
    "conf_dir",
    "config_hash",
    "load_config",
    "to_dict",
    "validate",
]
