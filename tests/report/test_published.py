"""The published-results table (conf/published/) and its columns in the report (bench.report.published)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pandas as pd
import pytest

from bench.config.compose import conf_dir
from bench.errors import ConfigError
from bench.report import published
from bench.report.published import Published
from bench.report.table import comparison, final_runs, write_tables

from .test_report import _write

ARXIV = re.compile(r"^\d{4}\.\d{4,5}$")
DATASETS = {"cityscapes", "ade20k", "voc", "camvid", "coco_stuff164k"}


def _presets(group: str) -> set[str]:
    return {p.stem for p in (conf_dir() / group).glob("*.yaml")}


# ---- the data: schema, citations, preset names, no key with two numbers
def test_every_published_row_is_cited_and_names_real_presets():
    rows = published.load()
    assert len(rows) > 100
    models = _presets("student") | _presets("teacher")
    for r in rows:
        assert ARXIV.match(r.arxiv), r
        assert r.table.strip() and r.source.strip() and r.paper.strip(), r
        assert r.dataset in DATASETS and r.split in {"val", "test"}, r
        assert r.protocol is None or r.protocol in _presets("protocol"), r
        assert r.teacher is None or r.teacher in models, r
        assert r.student is None or r.student in models, r
        assert r.preset is None or r.preset in _presets("method"), r
        assert 0 < r.miou < 100 and (r.baseline is None or 0 < r.baseline < 100), r
        assert r.teacher_paper and r.student_paper and r.method
    assert published.duplicates(rows) == []


def test_the_papers_of_the_issue_are_covered():
    papers = {r.paper for r in published.load()}
    assert {"SKD", "CIRKD", "Af-DCD", "MasKD", "DIST", "BPKD", "AICSD"} <= papers
    methods = {r.method for r in published.load()}
    assert {"SKD", "IFVD", "AICSD", "CIRKD", "Af-DCD", "MasKD", "BPKD"} <= methods


def _row(**kw) -> Published:
    base = dict(
        paper="P",
        arxiv="2204.06986",
        source="x/y@1 README.md",
        table="T1",
        dataset="cityscapes",
        split="val",
        protocol="cirkd",
        setting=None,
        teacher="deeplabv3_r101",
        teacher_paper="DLV3-R101",
        student="deeplabv3_r18",
        student_paper="DLV3-R18",
        method="SKD",
        preset="skd_paper",
        miou=75.42,
        baseline=74.21,
    )
    return Published(**{**base, **kw})


def test_a_key_with_two_numbers_is_found():
    a = _row()
    assert published.duplicates([a, a]) == []  # the same number twice is no conflict
    assert len(published.duplicates([a, replace(a, miou=75.0)])) == 1
    assert len(published.duplicates([a, replace(a, baseline=74.0)])) == 1
    assert published.duplicates([a, replace(a, paper="Q", miou=75.0)]) == []  # another source


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("paper: P\nsource: s\ntables: []\n", "needs exactly the keys"),  # no arxiv
        (
            "paper: P\narxiv: '1'\nsource: s\ntables:\n  - {table: t, dataset: voc, split: val, "
            "protocol: null, rows: []}\n",
            "needs the keys",  # no teacher
        ),
        (
            "paper: P\narxiv: '1'\nsource: s\ntables:\n  - {table: t, dataset: voc, split: val, "
            "protocol: null, teacher: null, rows: [[a, b, c, 1.0]]}\n",
            "needs student",
        ),
    ],
)
def test_a_malformed_file_names_itself_and_the_cause(tmp_path, text, cause):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"bad\.yaml: .*{cause}"):
        published.load(tmp_path)


# ---- matching: every key counts, and no match leaves the columns empty
ROWS = [
    _row(),
    _row(paper="Q", miou=75.5, baseline=73.0),
    _row(method="CIRKD", preset="cirkd_paper", miou=76.38),
]
PAIR = ("cityscapes", "cirkd", "deeplabv3_r101", "deeplabv3_r18")


def test_a_row_matches_on_dataset_protocol_pair_and_method():
    found = published.matches(ROWS, "cityscapes", "cirkd", "deeplabv3_r101", "deeplabv3_r18", "skd_paper")
    assert [r.paper for r in found] == ["P", "Q"]
    cols = published.columns(found, "skd_paper")
    assert cols["published_miou"] == 75.42 and cols["published_baseline"] == 74.21
    assert cols["published_delta"] == pytest.approx(1.21)


@pytest.mark.parametrize(
    "key",
    [
        ("voc", "cirkd", "deeplabv3_r101", "deeplabv3_r18", "skd_paper"),  # another dataset
        ("cityscapes", "mmseg80k", "deeplabv3_r101", "deeplabv3_r18", "skd_paper"),  # another protocol
        ("cityscapes", None, "deeplabv3_r101", "deeplabv3_r18", "skd_paper"),  # no protocol
        ("cityscapes", "cirkd", "deeplabv3_small", "deeplabv3_r18", "skd_paper"),  # another teacher
        ("cityscapes", "cirkd", "deeplabv3_r101", "pspnet_r18", "skd_paper"),  # another student
        ("cityscapes", "cirkd", "deeplabv3_r101", "deeplabv3_r18", "kd"),  # a method not in the table
        ("cityscapes", "cirkd", None, "deeplabv3_r18", "skd_paper"),  # no teacher
    ],
)
def test_anything_else_matches_nothing_and_leaves_the_columns_empty(key):
    assert published.matches(ROWS, *key) == []
    assert all(math.isnan(v) for v in published.columns([], key[-1]).values())


def test_a_test_split_or_unnamed_preset_never_matches():
    rows = [_row(split="test"), _row(student=None), _row(preset=None)]
    assert published.matches(rows, *PAIR, "skd_paper") == []


def test_the_baseline_row_reads_the_reported_baseline():
    found = published.matches(ROWS, "cityscapes", "cirkd", "deeplabv3_r101", "deeplabv3_r18", "baseline")
    assert published.columns(found, "baseline") == {
        "published_miou": 74.21,
        "published_baseline": 74.21,
        "published_delta": 0.0,
    }
    no_baseline = [_row(baseline=None)]
    assert published.matches(no_baseline, *PAIR, "baseline") == []
    cols = published.columns(published.matches(no_baseline, *PAIR, "skd_paper"), "skd_paper")
    assert cols["published_miou"] == 75.42 and math.isnan(cols["published_delta"])


# ---- through the report: fabricated finals of a real published comparison and of an unpublished one
def _finals(root, protocol: str | None, methods=("baseline", "skd_paper", "kd")) -> None:
    for seed, (b, k) in enumerate([(70.0, 71.0), (71.0, 73.0), (72.0, 72.5)]):
        for method in methods:
            teacher = None if method == "baseline" else "deeplabv3_r101"
            _write(root, method, teacher, seed, b if method == "baseline" else k, dataset="cityscapes")
    for path in root.rglob("result.json"):
        row = json.loads(path.read_text())
        row["student"] = "deeplabv3_r18"
        row["config"] = {"reproduction": {"protocol": protocol}}
        path.write_text(json.dumps(row))


def test_the_report_fills_the_published_columns_of_matching_rows_only(tmp_path):
    _finals(tmp_path, "cirkd")
    table = comparison(final_runs(tmp_path), n_resamples=50).set_index("method")
    skd = table.loc["skd_paper"]
    assert (skd.published_miou, skd.published_baseline) == (75.42, 74.21)
    assert skd.published_delta == pytest.approx(75.42 - 74.21)
    assert skd.protocol == "cirkd" and "CIRKD (arXiv 2204.06986" in skd.published_source
    assert "Af-DCD (arXiv 2312.04168" in skd.published_source  # both sources report it
    assert table.loc["baseline"].published_miou == 74.21
    kd = table.loc["kd"]  # no published KD row for Cityscapes: empty, not zero
    assert math.isnan(kd.published_miou) and math.isnan(kd.published_delta) and kd.published_source == ""

    md = write_tables(table.reset_index(), tmp_path / "tables")["md"].read_text()
    where = "- cityscapes/deeplabv3_r18/deeplabv3_r101/skd_paper"
    line = next(x for x in md.splitlines() if x.startswith(where))
    delta = skd.delta
    assert f"published +1.21 over 74.21; against a tuned baseline {delta:+.2f} [" in line
    assert not any("/kd:" in x for x in md.splitlines())
    assert sum(x.startswith("- cityscapes/") for x in md.splitlines()) == 1


def test_finals_without_the_protocol_match_nothing(tmp_path):
    _finals(tmp_path, None)
    table = comparison(final_runs(tmp_path), n_resamples=50)
    assert table["published_miou"].isna().all() and (table["protocol"] == "").all()
    md = write_tables(table, tmp_path / "tables")["md"].read_text()
    assert "Published results beside ours" not in md


def test_finals_of_two_protocols_in_one_row_match_nothing(tmp_path):
    _finals(tmp_path, "cirkd")
    for path in sorted(tmp_path.rglob("result.json"))[:1]:
        row = json.loads(path.read_text())
        row["config"] = {"reproduction": {"protocol": "mmseg80k"}}
        path.write_text(json.dumps(row))
    table = comparison(final_runs(tmp_path), n_resamples=50)
    changed = table[table["protocol"] == ""]
    assert len(changed) == 1 and changed["published_miou"].isna().all()


def test_lines_read_the_published_gain_against_ours():
    table = pd.DataFrame(
        [
            dict(dataset="d", student="s", teacher="t", method="baseline", delta=0.0, delta_ci_low=math.nan,
                 delta_ci_high=math.nan, published_miou=74.21, published_baseline=74.21, published_delta=0.0,
                 published_source="P"),
            dict(dataset="d", student="s", teacher="t", method="skd_paper", delta=0.2, delta_ci_low=-0.4,
                 delta_ci_high=0.8, published_miou=75.42, published_baseline=74.21, published_delta=1.21,
                 published_source="P"),
            dict(dataset="d", student="s", teacher="t", method="maskd", delta=0.5, delta_ci_low=math.nan,
                 delta_ci_high=math.nan, published_miou=77.0, published_baseline=math.nan,
                 published_delta=math.nan, published_source="M"),
            dict(dataset="d", student="s", teacher="t", method="kd", delta=0.1, delta_ci_low=0.0,
                 delta_ci_high=0.2, published_miou=math.nan, published_baseline=math.nan,
                 published_delta=math.nan, published_source=""),
        ]
    )  # fmt: skip
    assert published.lines(table) == [
        "d/s/t/skd_paper: published +1.21 over 74.21; "
        "against a tuned baseline +0.20 [-0.40, 0.80] (source: P)",
        "d/s/t/maskd: published 77.00 (no baseline reported); against a tuned baseline +0.50 (source: M)",
    ]
    assert published.lines(table.iloc[[0, 3]]) == []
