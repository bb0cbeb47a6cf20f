"""``--correct-across`` (issue 25 item 6, optional): Holm over every KD method of every comparison of
a table (datasets × pairs), beside the per-comparison ``p_holm``, on hand-made result rows."""

import math

import pandas as pd
import pytest

from bench.report.__main__ import main as report_main
from bench.report.stats import holm
from bench.report.table import comparison, final_runs, write_tables

from .test_report import _write

# (dataset, method) -> final mIoU per seed; the baseline's: 70, 71, 72
GAINS = {
    ("synthetic", "kd"): (1.0, 2.0, 0.5),
    ("synthetic", "fitnet"): (0.2, -0.1, 0.4),
    ("other", "kd"): (0.9, 1.1, 1.3),
}


@pytest.fixture
def two_datasets(tmp_path):
    for dataset in ("synthetic", "other"):
        for seed, base in enumerate((70.0, 71.0, 72.0)):
            _write(
                tmp_path,
                "baseline",
                None,
                seed,
                base,
                dataset=dataset,
                study=f"{dataset}/tiny/none/baseline/trials",
            )
            for (d, method), gains in GAINS.items():
                if d == dataset:
                    _write(
                        tmp_path, method, "big", seed, base + gains[seed], dataset=dataset,
                        study=f"{dataset}/tiny/big/{method}/trials",
                    )  # fmt: skip
    return tmp_path


def test_p_holm_all_is_holm_over_every_kd_method_of_every_comparison(two_datasets):
    table = comparison(final_runs(two_datasets), correct_across=True)
    kd = table[table["method"] != "baseline"]
    assert len(kd) == 3 and kd["dataset"].nunique() == 2
    assert list(kd["p_holm_all"]) == pytest.approx(holm(list(kd["p_value"])))  # one family of 3 tests
    for _, part in kd.groupby("dataset"):  # p_holm stays within its comparison
        assert list(part["p_holm"]) == pytest.approx(holm(list(part["p_value"])))
    assert (kd["p_holm_all"] >= kd["p_holm"] - 1e-12).all()
    assert table.loc[table["method"] == "baseline", "p_holm_all"].isna().all()
    assert list(table.columns).index("p_holm_all") == list(table.columns).index("p_holm") + 1


def test_an_undefined_test_stays_in_the_family_at_p_one(two_datasets):
    _write(two_datasets, "kd", "big", 1, math.nan, dataset="other", study="other/tiny/big/kd/trials")
    table = comparison(final_runs(two_datasets), correct_across=True).set_index(["dataset", "method"])
    assert math.isnan(table.loc[("other", "kd")].p_holm_all)
    defined = table.loc[[("synthetic", "kd"), ("synthetic", "fitnet")]]
    assert list(defined["p_holm_all"]) == pytest.approx(holm([*defined["p_value"], 1.0])[:2])


def test_without_the_flag_no_column_and_the_header_names_the_family(two_datasets, tmp_path):
    plain = comparison(final_runs(two_datasets))
    assert "p_holm_all" not in plain.columns
    md = write_tables(plain, tmp_path / "plain")["md"].read_text()
    assert md.startswith(
        "Holm's family: the KD methods of each dataset × student × teacher (one comparison)."
    )
    across = write_tables(comparison(final_runs(two_datasets), correct_across=True), tmp_path / "across")
    text = across["md"].read_text()
    assert text.splitlines()[0].endswith(
        "p_holm_all: every KD method of every comparison in this table (3 tests over 2 dataset × student "
        "× teacher comparisons, --correct-across)."
    )
    assert "p_holm_all" in text.splitlines()[2] and "p_holm_all" in pd.read_csv(across["csv"]).columns


def test_make_report_correct_across(two_datasets, tmp_path, capsys):
    out = tmp_path / "report"
    assert report_main(["--finals", str(two_datasets), "--out", str(out), "--correct-across"]) == 0
    assert "p_holm_all" in pd.read_csv(out / "tables" / "comparison.csv").columns
    capsys.readouterr()
