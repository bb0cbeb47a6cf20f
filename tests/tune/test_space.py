"""Search spaces are validated before any trial runs."""

from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from bench.config.compose import load_config
from bench.errors import ConfigError
from bench.tune.space import load_space

from ..conftest import TINY


def _space_dir(tmp: Path, method_yaml: str, train_yaml: str | None = None) -> Path:
    (tmp / "method").mkdir(parents=True)
    (tmp / "train" / "synthetic").mkdir(parents=True)
    (tmp / "method" / "kd.yaml").write_text(method_yaml)
    (tmp / "train" / "synthetic" / "default.yaml").write_text(
        train_yaml or "params:\n  train.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}\n"
    )
    return tmp


def _load(tmp: Path, *overrides: str):
    return load_space(load_config([*TINY, "method=kd", f"tune.sweeps_dir={tmp}", *overrides]))


@pytest.mark.slow
def test_repository_spaces_load_for_every_method():
    from bench.config.compose import conf_dir

    for path in sorted((conf_dir().parent / "sweeps" / "method").glob("*.yaml")):
        space = load_space(load_config([f"method={path.stem}"]))
        assert "train.optimizer.lr" in space.distributions  # the shared space comes first


def test_distributions_and_defaults(tmp_path):
    root = _space_dir(
        tmp_path,
        """params:
  method.terms.kd.weight: {type: float, low: 0.1, high: 10, log: true}
  method.terms.kd.temperature: {type: categorical, choices: [1.0, 2.0, 4.0]}
  train.schedule.warmup_iters: {type: int, low: 0, high: 40, step: 2}
""",
    )
    space = _load(root)
    assert space.distributions["method.terms.kd.weight"] == FloatDistribution(0.1, 10, log=True)
    assert space.distributions["method.terms.kd.temperature"] == CategoricalDistribution([1.0, 2.0, 4.0])
    assert space.distributions["train.schedule.warmup_iters"] == IntDistribution(0, 40, step=2)
    cfg = load_config([*TINY, "method=kd"])
    assert space.defaults == {
        "train.optimizer.lr": cfg.train.optimizer.lr,
        "method.terms.kd.weight": 1.0,
        "method.terms.kd.temperature": 1.0,
        "train.schedule.warmup_iters": cfg.train.schedule.warmup_iters,
    }


@pytest.mark.parametrize(
    ("method_yaml", "message"),
    [
        ("params:\n  method.terms.kd.temprature: {type: categorical, choices: [1.0]}\n", "temprature"),
        ("params:\n  method.terms.kd.weight: {type: normal, low: 0, high: 1}\n", "type"),
        ("params:\n  method.terms.kd.weight: {type: float, low: 0.1, high: 1, lg: true}\n", "lg"),
        ("params:\n  method.terms.kd.weight: {type: float, low: 2.0, high: 5.0}\n", "outside"),  # default 1.0
        ("params:\n  method.terms.kd.temperature: {type: categorical, choices: [2.0, 4.0]}\n", "outside"),
        ("space: {}\n", "top-level"),
        ("params:\n  train.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0}\n", "already tuned"),
    ],
)
def test_bad_spaces_name_the_file_and_key(tmp_path, method_yaml, message):
    root = _space_dir(tmp_path, method_yaml)
    with pytest.raises(ConfigError, match=message) as err:
        _load(root)
    assert "kd.yaml" in str(err.value) or "default.yaml" in str(err.value)


def test_unknown_method_space_lists_the_known_ones(tmp_path):
    root = _space_dir(tmp_path, "params: {}\n")
    with pytest.raises(ConfigError, match=r"no search space for method 'baseline'.*kd"):
        load_space(load_config([*TINY, f"tune.sweeps_dir={root}"]))


def test_missing_training_space(tmp_path):
    (tmp_path / "method").mkdir()
    with pytest.raises(ConfigError, match="no training search space"):
        _load(tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "null"), (True, "true"), (0.1 + 0.2, repr(0.1 + 0.2)), (3, "3"), ("hinge", "'hinge'")],
)
def test_sampled_values_become_hydra_overrides(value, expected):
    from bench.config.overrides import format_override

    assert format_override("a.b", value) == f"a.b={expected}"
