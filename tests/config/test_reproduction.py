"""The reproduction labels (``reproduction.*``): set by the protocol and experiment presets, kept out
of every hash."""

from __future__ import annotations

import pytest

from bench.config.compose import conf_dir, config_hash, load_config


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("protocol", _names("protocol"))
def test_each_protocol_labels_its_runs_with_its_own_name(protocol):
    assert load_config([f"protocol={protocol}", "dataset=cityscapes"]).reproduction.protocol == protocol


def test_without_a_protocol_the_label_is_empty():
    assert load_config(["dataset=cityscapes"]).reproduction.protocol is None


def test_the_labels_change_no_hash():
    plain = load_config([])
    labels = ["reproduction.protocol=cirkd", "reproduction.paper=x", "+reproduction.runs.s=[kd]"]
    labelled = load_config(labels)
    assert labelled.reproduction.runs == {"s": ["kd"]}
    assert config_hash(plain) == config_hash(labelled)
