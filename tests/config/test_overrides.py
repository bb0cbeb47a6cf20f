"""The Overrides value: Hydra's own parser answers what the command line says."""

import pytest

from bench.config.overrides import Overrides, format_override
from bench.errors import ConfigError
from bench.workers.processes import requested_workers


def test_get_reads_values_as_hydra_parses_them():
    o = Overrides(["tune.workers=2", "+tune.x=1.5", "launcher.name='local'", 'dataset="ade20k"', "method=kd"])
    assert o.get("tune.workers") == 2
    assert o.get("tune.x") == 1.5
    assert o.get("launcher.name") == "local"  # quotes are syntax, not part of the value
    assert o.get("dataset") == "ade20k"
    assert o.get("method") == "kd"
    assert o.get("seed") is None and o.get("seed", 7) == 7


def test_the_last_item_wins_and_a_deletion_clears_the_key():
    assert Overrides(["tune.workers=2", "tune.workers=4"]).get("tune.workers") == 4
    deleted = Overrides(["tune.workers=3", "~tune.workers"])
    assert deleted.get("tune.workers", 1) == 1
    assert deleted.has("tune.workers")


def test_an_equals_sign_inside_a_quoted_value_stays_in_the_value():
    url = "postgresql://u:p=w@h/db?sslmode=require"
    o = Overrides([f"tune.storage='{url}'", "tune.trials=3"])
    assert o.get("tune.storage") == url
    assert o.without("tune.storage") == ["tune.trials=3"]


def test_has_is_the_key_itself_not_a_longer_one():
    o = Overrides(["tune.repeats=2", "tune.repeat_x=1"])
    assert not o.has("tune.repeat")
    assert o.has("tune.repeats")


def test_without_drops_a_key_and_what_lies_below_it_but_not_a_longer_name():
    o = Overrides(["tune.trials=3", "+tune.x=1", "~tune.storage", "tuner=1", "method=kd", "seed=1"])
    assert o.without("tune") == ["tuner=1", "method=kd", "seed=1"]
    assert o.without("tune.trials", "method") == ["+tune.x=1", "~tune.storage", "tuner=1", "seed=1"]


def test_without_below_false_keeps_keys_under_a_group():
    o = Overrides(["method=kd", "method.terms.kd.weight=2", "student=r18"])
    assert o.without("method", below=False) == ["method.terms.kd.weight=2", "student=r18"]
    assert o.without("method") == ["student=r18"]


def test_only_keeps_the_keys_and_what_lies_below_them():
    o = Overrides(["method=kd", "tune.trials=3", "dataset=voc", "tune.eval_batch_size=8"])
    assert o.only("method", "tune") == ["method=kd", "tune.trials=3", "tune.eval_batch_size=8"]


def test_choices_reads_hydras_comma_list():
    o = Overrides(["dataset=voc,ade20k", "method=kd"])
    assert o.choices("dataset") == ["voc", "ade20k"]
    assert o.choices("method") == ["kd"]
    assert o.choices("student") is None


def test_with_formats_values_and_keeps_the_rest():
    base = Overrides(["method=kd"])
    more = base.with_({"lr": 0.1 + 0.2, "name": "x", "on": True, "none": None, "n": 3})
    assert more == ["method=kd", "lr=0.30000000000000004", "name='x'", "on=true", "none=null", "n=3"]
    assert base == ["method=kd"]  # a value: the original is unchanged
    assert more.get("lr") == 0.1 + 0.2 and more.get("on") is True and more.get("none") is None
    assert base.with_(["seed=2"]) == ["method=kd", "seed=2"]
    assert format_override("k", "it's") == "k='it's'"  # as before the type: no escaping added


def test_malformed_text_is_the_users_config_error():
    with pytest.raises(ConfigError, match="no viable alternative"):
        Overrides(["train.crop_size=[1,"]).get("seed")


@pytest.mark.parametrize(
    "overrides, workers",
    [
        (["tune.workers=3", "~tune.workers"], 1),  # deleted: the default (the hand parser said 3)
        (["++tune.workers=2"], 2),
        (['launcher.name="slurm"', "tune.workers=3"], 1),
        (["tune.storage='redis://h/0?a=tune.workers=9'"], 1),  # '=' inside a value is no key
    ],
)
def test_workers_started_ahead_read_the_overrides_as_hydra_does(overrides, workers):
    assert requested_workers(overrides) == workers
