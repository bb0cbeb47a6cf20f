"""Search spaces: the shared training space of a dataset × student plus the method's own dimensions.

Files: ``sweeps/train/<dataset>/<student>.yaml`` (or ``default.yaml``) and ``sweeps/method/<method>.yaml``;
see ``sweeps/README.md`` for the format. Everything is checked before the first trial: unknown
paths, types or keys, and a literature default outside its range are errors naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from bench.config.schema import RunConfig
from bench.errors import ConfigError
from bench.paths import sweeps_dir

KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


@dataclass
class SearchSpace:
    """The distributions a study samples and the composed config's value of each (trial 0).

    ``shared`` lists the dimensions of the shared training space (the first file); the others are
    the method's own.
    """

    distributions: dict[str, BaseDistribution]
    defaults: dict[str, Any]
    files: list[Path]
    shared: list[str] = field(default_factory=list)

    def content(self) -> dict[str, dict[str, Any]]:
        """The space by content, stored with the study (no file paths: equal content, equal space).

        ``{"shared": {key: {"distribution": ..., "default": ...}}, "method": {...}}`` with Optuna's
        JSON form of each distribution, decoded (so that key order inside it does not matter).
        """

        def entry(key: str) -> dict[str, Any]:
            return {
                "distribution": json.loads(distribution_to_json(self.distributions[key])),
                "default": self.defaults[key],
            }

        return {
            "shared": {k: entry(k) for k in self.distributions if k in self.shared},
            "method": {k: entry(k) for k in self.distributions if k not in self.shared},
        }

    def relative_files(self) -> list[str]:
        """The space files relative to the repository (as given when outside it), for the record."""
        root = sweeps_dir().parent.resolve()
        out = []
        for f in self.files:
            try:
                out.append(str(Path(f).resolve().relative_to(root)))
            except ValueError:
                out.append(str(f))
        return out


def space_files(cfg: RunConfig) -> list[Path]:
    """The shared training space of the dataset × student, then the method's own space."""
    root = Path(cfg.tune.sweeps_dir) if cfg.tune.sweeps_dir else sweeps_dir()
    train_dir = root / "train" / cfg.dataset.name
    shared = train_dir / f"{cfg.student.name}.yaml"
    if not shared.is_file():
        shared = train_dir / "default.yaml"
    if not shared.is_file():
        raise ConfigError(
            f"no training search space for dataset '{cfg.dataset.name}': add {train_dir}/default.yaml "
            f"or {train_dir}/{cfg.student.name}.yaml (format: sweeps/README.md)"
        )
    method = root / "method" / f"{cfg.method.name}.yaml"
    if not method.is_file():
        known = sorted(p.stem for p in (root / "method").glob("*.yaml"))
        raise ConfigError(
            f"no search space for method '{cfg.method.name}' ({method} missing); "
            f"methods with one: {', '.join(known)}"
        )
    return [shared, method]


def load_space(cfg: RunConfig) -> SearchSpace:
    """Load and validate the study's search space against the composed config ``cfg``."""
    composed = OmegaConf.structured(cfg)
    distributions: dict[str, BaseDistribution] = {}
    defaults: dict[str, Any] = {}
    files = space_files(cfg)
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if set(data) - {"params"}:
            raise ConfigError(
                f"{path}: unknown top-level keys {sorted(set(data) - {'params'})}; only 'params'"
            )
        for key, spec in (data.get("params") or {}).items():
            if key in distributions:
                raise ConfigError(f"{path}: '{key}' is already tuned by {files[0]}")
            if OmegaConf.select(composed, key, default="__missing__") == "__missing__":
                raise ConfigError(
                    f"{path}: '{key}' is not a key of the composed config (for method "
                    f"'{cfg.method.name}'); check the spelling against `--cfg`"
                )
            dist = _distribution(path, key, spec)
            value = OmegaConf.select(composed, key)
            if not _contains(dist, value):
                raise ConfigError(
                    f"{path}: the default {key}={value!r} (trial 0) lies outside {spec}; widen the range "
                    "or change the default in the config"
                )
            distributions[key] = dist
            defaults[key] = value
        if path == files[0]:
            shared = list(distributions)
    return SearchSpace(distributions, defaults, files, shared)


def _distribution(path: Path, key: str, spec: Any) -> BaseDistribution:
    if not isinstance(spec, dict) or spec.get("type") not in KEYS:
        raise ConfigError(f"{path}: '{key}' needs type: {' | '.join(KEYS)}, got {spec!r}")
    kind = spec["type"]
    unknown = set(spec) - KEYS[kind]
    if unknown:
        raise ConfigError(
            f"{path}: '{key}' has unknown keys {sorted(unknown)}; {kind} takes {sorted(KEYS[kind])}"
        )
    try:
        if kind == "categorical":
            return CategoricalDistribution(list(spec["choices"]))
        if kind == "float":
            return FloatDistribution(
                float(spec["low"]),
                float(spec["high"]),
                log=bool(spec.get("log", False)),
                step=spec.get("step"),
            )
        return IntDistribution(
            int(spec["low"]),
            int(spec["high"]),
            log=bool(spec.get("log", False)),
            step=int(spec.get("step", 1)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: '{key}': invalid {kind} distribution {spec!r} ({e})") from None


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(dist, IntDistribution) and value != int(value):
        return False
    return dist._contains(dist.to_internal_repr(value))  # optuna's own range and step check
