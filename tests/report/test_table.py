"""The comparison table's groups: every dataset × student of the finals gets its rows."""

import pandas as pd

from bench.report.table import comparison, final_runs

from .test_report import _write


def test_a_dataset_with_a_baseline_only_keeps_its_row_beside_another_with_kd(tmp_path):
    """camvid's baseline was dropped without a word once another dataset had KD finals."""
    for seed in range(2):
        _write(tmp_path / "synthetic", "baseline", None, seed, 70.0 + seed)
        _write(tmp_path / "synthetic", "kd", "big", seed, 71.0 + seed)
        _write(tmp_path / "camvid", "baseline", None, seed, 60.0 + seed)
    runs = pd.concat(
        [final_runs(tmp_path / "synthetic"), final_runs(tmp_path / "camvid").assign(dataset="camvid")]
    )
    table = comparison(runs)
    assert list(zip(table["dataset"], table["method"], strict=True)) == [
        ("camvid", "baseline"),
        ("synthetic", "baseline"),
        ("synthetic", "kd"),
    ]
    assert pd.isna(table["teacher"].iloc[0]) and list(table["teacher"].iloc[1:]) == ["big", "big"]
    camvid = table.iloc[0]
    assert camvid.miou_mean == 60.5 and camvid.budget_check == "ok"


def test_two_teachers_give_two_comparisons_each_against_the_baseline(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0 + seed)
        _write(tmp_path, "kd", "big", seed, 71.0 + seed)
        _write(tmp_path, "kd", "small", seed, 72.0 + seed, teacher_sha="b" * 64)
    table = comparison(final_runs(tmp_path))
    assert list(zip(table["teacher"], table["method"], table["delta"], strict=True)) == [
        ("big", "baseline", 0.0),
        ("big", "kd", 1.0),
        ("small", "baseline", 0.0),
        ("small", "kd", 2.0),
    ]
