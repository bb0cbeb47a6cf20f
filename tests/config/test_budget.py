"""The Budget value: one place for every text form of a tuning budget."""

from dataclasses import replace

import pytest

from bench.config.budget import Budget
from bench.config.schema import TuneConfig
from bench.errors import ConfigError


@pytest.mark.parametrize(
    "budget, label, stored",
    [
        (Budget("trials", 20), "trials20", {"kind": "trials", "trials": 20, "seconds": None}),
        (Budget("time", 3600.0), "time3600s", {"kind": "time", "trials": None, "seconds": 3600.0}),
        (Budget("time", 90.5), "time90.5s", {"kind": "time", "trials": None, "seconds": 90.5}),
    ],
)
def test_label_dict_and_back(budget, label, stored):
    assert budget.label == label == str(budget)
    assert Budget.from_label(label) == budget
    assert budget.as_dict() == stored
    assert Budget.from_dict(stored) == budget


def test_a_config_gives_its_budget():
    tune = TuneConfig()
    assert Budget.of(replace(tune, budget="trials", trials=7)).label == "trials7"
    assert Budget.of(replace(tune, budget="time", seconds=90.0)).label == "time90s"
    assert Budget("trials", 30).on(tune).trials == 30
    assert Budget("time", 60.0).on(tune).seconds == 60.0


def test_overrides_select_the_budget():
    assert Budget.from_label("trials2").overrides() == ["tune.budget=trials", "tune.trials=2"]
    assert Budget.from_label("time3600s").overrides() == ["tune.budget=time", "tune.seconds=3600"]
    assert Budget("trials", 2).overrides().get("tune.trials") == 2


def test_budgets_flag_items():
    assert Budget.from_amount("20") == Budget("trials", 20)
    assert Budget.from_amount("600s") == Budget("time", 600.0)
    for bad in ("20x", "s", "1.5", ""):
        with pytest.raises(ConfigError):
            Budget.from_amount(bad)


def test_order_is_by_kind_then_amount():
    labels = ["trials20", "time600s", "trials5", "time60s"]
    assert [b.label for b in sorted(map(Budget.from_label, labels))] == [
        "time60s",
        "time600s",
        "trials5",
        "trials20",
    ]


@pytest.mark.parametrize("label", ["trials", "trials2.5", "time60", "seconds60s", "trials20s", "xtrials2"])
def test_a_label_that_is_no_budget_is_an_error(label):
    with pytest.raises(ConfigError, match="neither"):
        Budget.from_label(label)


def test_an_unknown_kind_is_an_error():
    with pytest.raises(ConfigError, match="valid: trials, time"):
        Budget("epochs", 3)
