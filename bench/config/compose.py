"""Compose a run config with Hydra's compose API and validate it against the schemas.

Entry points, tests and the tuner all go through :func:`load_config`, so a trial's config is built
exactly like a command-line run's. ``${hydra:...}`` interpolations are not used anywhere: they do not
resolve under the compose API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config.messages import error_text
from bench.config.schema import NON_SEMANTIC_KEYS, RunConfig
from bench.errors import ConfigError
from bench.paths import conf_dir
from bench.utils.secrets import mask_url

T = TypeVar("T")


def register_schemas() -> None:
    """Put the schemas in Hydra's ConfigStore, where the YAML files' defaults lists find them.

    ``run_schema`` is the base of every primary config; ``schema/dataset/<name>`` and
    ``schema/term/<name>`` are the registry entries' own config classes, which a dataset file extends
    with ``- /schema/dataset/<name>@_here_`` and a method file with ``- /schema/term/<term>@terms.<key>``.
    So every key of the schemas can be overridden (no ``+`` needed) and a misspelled one fails.
    """
    from bench.data import DATASETS
    from bench.methods import TERMS

    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for name in DATASETS.names():
        store.store(group="schema/dataset", name=name, node=DATASETS.get(name).config_class)
    for name in TERMS.names():
        store.store(group="schema/term", name=name, node=TERMS.get(name).Config)


def compose_raw(overrides: Sequence[str] = (), config_name: str = "run") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with Hydra overrides onto the schemas."""
    register_schemas()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            return compose(config_name=config_name, overrides=list(overrides))
    except MissingConfigException as e:
        group, _, choice = (e.missing_cfg_file or "").rpartition("/")
        if group and e.options:
            raise ConfigError(
                f"unknown {group} '{choice}'; valid names: {', '.join(sorted(e.options))}"
            ) from None
        raise ConfigError(error_text(e)) from None
    except ConfigCompositionException as e:
        unknown = re.match(r"Could not override '([^']+)'", str(e))
        if unknown:
            raise ConfigError(
                f"unknown config key '{unknown.group(1)}'; check its spelling (`--cfg` prints every key)"
            ) from None
        raise ConfigError(error_text(e)) from None
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(error_text(e)) from None


def load_config(overrides: Sequence[str] = (), config_name: str = "run") -> RunConfig:
    """Compose, validate and resolve a run config into a typed :class:`RunConfig`."""
    return validate(compose_raw(overrides, config_name))


def validate(cfg: DictConfig | dict) -> RunConfig:
    """Merge a composed config into the schemas and resolve it into typed objects.

    Composition already checked the keys the YAML files declare; this also covers entries added with
    ``+`` (a new term in ``method.terms``) and files that do not extend their schema.
    """
    return finish(typed(cfg))


def typed(cfg: DictConfig | dict) -> DictConfig:
    """A composed config merged into its schemas (the dataset's and each term's), not yet resolved:
    values set on it are type-checked as they are set, and interpolations still follow them."""
    from bench.data import DATASETS
    from bench.methods import TERMS

    if isinstance(cfg, dict):
        cfg = OmegaConf.create(cfg)
    try:
        schema = OmegaConf.structured(RunConfig)
        schema.dataset = OmegaConf.structured(DATASETS.get(_required(cfg, "dataset.name")).config_class)
        terms = OmegaConf.select(cfg, "method.terms", default=None) or {}
        for key, entry in terms.items():
            term_name = entry.get("term") or key
            schema.method.terms[key] = OmegaConf.structured(TERMS.get(term_name).Config)
        return OmegaConf.merge(schema, OmegaConf.to_container(cfg))
    except OmegaConfBaseException as e:
        raise ConfigError(error_text(e)) from None


def finish(merged: DictConfig) -> RunConfig:
    """A :func:`typed` config resolved into a :class:`RunConfig` and checked (``merged`` is resolved
    in place)."""
    try:
        OmegaConf.resolve(merged)
        run: RunConfig = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(error_text(e)) from None
    _check_consistency(run)
    return run


def _required(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        raise ConfigError(f"missing config key '{key}'")
    return value


def _check_consistency(run: RunConfig) -> None:
    """Cross-field rules the schemas cannot express."""
    from bench.data import DATASETS
    from bench.models import MODELS

    DATASETS.get(run.dataset.name).check_config(run.dataset)
    MODELS.get(run.student.arch)
    MODELS.get(run.teacher.arch)
    t = run.train
    if t.iterations < 1 or t.batch_size < 1:
        raise ConfigError("train.iterations and train.batch_size must be at least 1")
    for name, size in (("train.crop_size", t.crop_size), ("eval.crop_size", run.eval.crop_size)):
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ConfigError(f"{name} must be [height, width], got {size}")
    if t.crop_size is not None and any(s % run.student.output_stride for s in t.crop_size):
        raise ConfigError(
            f"train.crop_size={t.crop_size} must be divisible by student.output_stride="
            f"{run.student.output_stride}"
        )
    if run.eval.mode == "slide" and (run.eval.crop_size is None or run.eval.stride is None):
        raise ConfigError("eval.mode=slide needs eval.crop_size=[h,w] and eval.stride=[h,w]")


def to_dict(run: RunConfig) -> dict[str, Any]:
    """The run config as plain, JSON-serialisable containers (storage credentials masked).

    What ``OmegaConf.to_container(OmegaConf.structured(run), enum_to_str=True)`` gives (tested on
    every preset; config hashes depend on it), built directly: rebuilding an OmegaConf tree of the
    run costs ≈ 40 ms, a tenth of a small tuning trial's overhead, and a trial needs it three times.
    """
    data = _plain(run)
    data["tune"]["storage"] = mask_url(data["tune"]["storage"])
    return data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_hash(run: RunConfig) -> str:
    """SHA-256 (16 hex digits) of everything in the config that changes what a run computes.

    The device counts by kind: ``cuda:1`` hashes as ``cuda``, so a run keeps its identity whichever
    GPU a worker slot gave it (:func:`bench.utils.devices.worker_slots`).
    """
    data = to_dict(run)
    data["device"] = re.sub(r"^cuda:\d+$", "cuda", data["device"])
    return hash_without(data, NON_SEMANTIC_KEYS, separators=(",", ":"))


def hash_without(data: dict[str, Any], keys: Iterable[str], **dumps: Any) -> str:
    """SHA-256 (16 hex digits) of ``data`` as key-sorted JSON, the dotted ``keys`` left out.

    ``data`` is changed in place. ``dumps``: options of :func:`json.dumps`; they are part of what a
    stored hash means, so each kind of hash keeps its own.
    """
    for dotted in keys:
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    blob = json.dumps(data, sort_keys=True, **dumps)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
