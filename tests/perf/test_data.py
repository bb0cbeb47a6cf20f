"""`python -m bench.perf.data`: generated layouts are readable and the report runs."""

from __future__ import annotations

import pytest

from bench.config.compose import load_config
from bench.data import build_split
from bench.perf.data import WRITERS, main, write_layout


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_generated_layouts_are_the_official_ones(tmp_path, name):
    write_layout(name, tmp_path, train_images=2, val_images=1, size=(64, 96))
    cfg = load_config([f"dataset={name}", f"dataset.root={tmp_path}", "dataset.allow_partial=true"]).dataset
    assert len(build_split(cfg, "train")) == 2 and len(build_split(cfg, "val")) == 1
    image, label = build_split(cfg, "val")[0]
    assert image.shape[1:] == label.shape and label.max() < 256


def test_report_prints_settings_and_throughput(capsys):
    args = ["--datasets", "synthetic", "camvid", "--workers", "0", "--steps", "1", "--images", "2"]
    assert main([*args, "train.batch_size=2"]) == 0
    out = capsys.readouterr().out
    assert "camvid: generated" in out and "crop [360, 360]" in out and "batch 2" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("synthetic ", "camvid "))]
    assert [r[0] for r in rows] == ["synthetic", "camvid"] and all(float(r[3]) > 0 for r in rows)
