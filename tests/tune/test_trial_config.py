"""A trial's config built on the study's composition equals composing its overrides from scratch."""

import pytest

from bench.config.compose import load_config, to_dict
from bench.errors import ConfigError
from bench.tune.runner import trial_overrides
from bench.tune.trial_config import trial_config, trial_values

from ..conftest import TINY


@pytest.mark.parametrize(
    "study, params",
    [
        (
            ["method=baseline"],
            {"train.optimizer.lr": 0.0012345678901234567, "train.schedule.warmup_iters": 7},
        ),
        (
            ["method=kd", "tune.trial_iterations=9", "train.precision=bf16"],
            {"method.terms.kd.temperature": 4.0, "train.batch_size": 8, "train.optimizer.name": "sgd"},
        ),
        (["method=skd_pair", "tune.pruner=none"], {"train.grad_clip": None, "train.augment.hflip": False}),
        # An interpolation of the study follows the trial's value, as in a fresh composition.
        (
            ["method=baseline", "train.optimizer.weight_decay=${train.optimizer.lr}"],
            {"train.optimizer.lr": 0.003},
        ),
    ],
)
def test_trial_config_equals_a_fresh_composition(tmp_path, study, params):
    overrides = [*TINY, f"tune.trials_dir={tmp_path}", *study]
    cfg = load_config(overrides)
    values = trial_values(cfg, "s", 3, params)
    built = trial_config(overrides, values)
    fresh = load_config([*overrides, *trial_overrides(cfg, "s", 3, params)])
    assert to_dict(built) == to_dict(fresh)
    assert built.output_dir == str(tmp_path / "s" / "trial_0003") and built.eval.split == "tune_holdout"
    # Hold-out validations batch like training (the sampled batch size when it is tuned).
    assert built.eval.batch_size == params.get("train.batch_size", cfg.train.batch_size)
    # The cached composition is not changed by a trial.
    again = trial_config(overrides, trial_values(cfg, "s", 4, {}))
    assert to_dict(again) == to_dict(load_config([*overrides, *trial_overrides(cfg, "s", 4, {})]))


def test_trial_config_rejects_a_wrong_type_or_key():
    with pytest.raises(ConfigError):
        trial_config(TINY, {"train.iterations": "many"})
    with pytest.raises(ConfigError):
        trial_config(TINY, {"train.no_such_key": 1})
    with pytest.raises(ConfigError, match=r"train\.optimizer\.name"):  # typed keys as in a composition
        trial_config(TINY, {"train.optimizer.name": "adam"})
    with pytest.raises(ConfigError, match=r"divisible by student\.output_stride"):  # and the same checks
        trial_config(TINY, {"train.crop_size": [33, 33]})


def test_hold_out_batch_size_can_be_set_for_the_study(tmp_path):
    overrides = [*TINY, f"tune.trials_dir={tmp_path}", "tune.eval_batch_size=32"]
    cfg = load_config(overrides)
    assert trial_config(overrides, trial_values(cfg, "s", 0, {})).eval.batch_size == 32
