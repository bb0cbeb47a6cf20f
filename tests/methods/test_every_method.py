"""Every method config trains a few steps end to end and has a search-space entry."""

import math

import pytest
import yaml

from bench.config.compose import conf_dir
from bench.engine.trainer import train_run
from bench.tune import study as st
from bench.tune.runner import run_sweep

from ..conftest import sweep_args, tiny_config

METHODS = sorted(p.stem for p in (conf_dir() / "method").glob("*.yaml"))
SWEEPS = conf_dir().parent / "sweeps" / "method"


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_trains_end_to_end(method, tmp_path, teachers_dir):
    row = train_run(tiny_config(tmp_path, f"method={method}", f"teachers_dir={teachers_dir}"))
    assert math.isfinite(row["history"][-1]["loss"])
    assert 0.0 <= row["metrics"]["miou"] <= 100.0  # percent


@pytest.mark.parametrize("method", METHODS)
def test_method_has_a_search_space(method):
    path = SWEEPS / f"{method}.yaml"
    assert path.is_file(), f"add {path} (see sweeps/README.md)"
    assert isinstance(yaml.safe_load(path.read_text())["params"], dict)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_sweeps(method, tmp_path, teachers_dir):
    """`make sweep METHOD=<method>` with a one-trial budget: the space loads, trial 0 trains and counts."""
    sweep = run_sweep(sweep_args(tmp_path, teachers_dir, f"method={method}", "tune.trials=1"))
    assert sweep.study.user_attrs["realised_budget"]["trials"] == 1
    assert len(st.tally(sweep.study).counted) == 1
