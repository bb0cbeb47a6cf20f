"""Figures for papers: PDF beside PNG, written atomically; integer trial axes, plain tick labels; the
teacher in every title and legend key, one panel per teacher."""

import os
import re
import stat

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from bench.report import figures
from bench.report.figures import (
    budget_curves_figure,
    gaps_figure,
    save_figure,
    tuning_curves_figure,
)
from bench.report.table import budget_curves, tuning_curves

# hold-out scores (percent, as final_runs gives them) of three trials that put the axis at 14.2857 …
# 14.2861: matplotlib's defaults label such an axis with an offset (+1.428e1) and put ticks at trial 1.25
FLAT = [14.2857, 14.2859, 14.2861]


def _study(dataset, teacher, method, values, budget="trials3", repeat=0, student="tiny"):
    """One final run's line of :func:`bench.report.table.final_runs`, with the fields the curves read."""
    best = list(np.maximum.accumulate(values))
    return {
        "dataset": dataset,
        "student": student,
        "teacher": teacher,
        "method": method,
        "repeat": repeat,
        "budget": budget,
        "study": f"{dataset}/{student}/{teacher}/{method}/trials" + (f"/r{repeat}" if repeat else ""),
        "tuning": {"best_so_far": best, "holdout_values": list(values)},
    }


def _two_teachers() -> pd.DataFrame:
    """One dataset × student, a baseline and kd distilled from two teachers."""
    return pd.DataFrame(
        [
            _study("synthetic", None, "baseline", FLAT),
            _study("synthetic", "big", "kd", [v + 1e-4 for v in FLAT]),
            _study("synthetic", "small", "kd", [v - 1e-4 for v in FLAT]),
        ]
    )


def _gaps_table() -> pd.DataFrame:
    rows = [
        ("baseline", 0.0, np.nan, np.nan),
        ("kd", 14.2859, 14.2857, 14.2861),
        ("fitnet", 14.2858, 14.2857, 14.2859),
    ]
    return pd.DataFrame(
        [
            {
                "dataset": "synthetic",
                "student": "tiny",
                "teacher": "big",
                "method": m,
                "delta": d,
                "delta_ci_low": lo,
                "delta_ci_high": hi,
                "undertuned": False,
                "budget": "trials3",
            }
            for m, d, lo, hi in rows
        ]
    )


FIGURES = {
    "gaps": lambda: gaps_figure(_gaps_table()),
    "tuning_curves": lambda: tuning_curves_figure(tuning_curves(_two_teachers())),
    "budget_curves": lambda: budget_curves_figure(budget_curves(_two_teachers())),
}
NUMBER = re.compile(r"[−-]?\d+(\.\d+)?")  # a plain tick label: no offset, no 1e1, no ×10^k


@pytest.mark.parametrize("name", list(FIGURES))
def test_no_offset_or_scientific_notation_and_integer_trial_ticks(name):
    fig = FIGURES[name]()
    fig.canvas.draw()
    try:
        axes = [ax for ax in fig.axes if ax.has_data()]
        assert axes
        for ax in axes:
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_offset_text().get_text() == "", (name, ax.get_title())
                if isinstance(axis.get_major_formatter(), ScalarFormatter):  # not the method names
                    labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
                    assert all(NUMBER.fullmatch(t) for t in labels), labels  # shared x: top unlabeled
            if name != "gaps":  # x: counted trials
                assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
                low, high = ax.get_xlim()
                ticks = [t for t in ax.get_xticks() if low <= t <= high]
                assert ticks and all(float(t).is_integer() for t in ticks), ticks
        if name != "gaps":  # the hand-made curves really sit at 14.2857 … (gaps: 0 is on the axis)
            low, high = axes[0].get_ylim()
            assert 14.28 < low < high < 14.29
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", ["tuning_curves", "budget_curves"])
def test_the_hand_made_curves_show_the_bug_without_the_fix(name, monkeypatch):
    """With matplotlib's defaults (plain_ticks a no-op) the same figures had the offset and trial 1.25."""
    monkeypatch.setattr(figures, "plain_ticks", lambda ax, integer_x=False: None)
    fig = FIGURES[name]()
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.yaxis.get_offset_text().get_text().startswith("+1.428")
    assert not all(float(t).is_integer() for t in ax.get_xticks())
    plt.close(fig)


def test_two_teachers_are_two_panels_each_with_the_baseline():
    runs = _two_teachers()
    for curves in (tuning_curves(runs), budget_curves(runs)):
        assert set(curves) == {
            ("synthetic", "tiny", "big", "trials3"),
            ("synthetic", "tiny", "small", "trials3"),
        }
        assert all(set(methods) == {"baseline", "kd"} for methods in curves.values())
        big, small = (
            curves[("synthetic", "tiny", "big", "trials3")],
            curves[("synthetic", "tiny", "small", "trials3")],
        )
        assert big["kd"] != small["kd"] and big["baseline"] == small["baseline"]
    for fig in (tuning_curves_figure(tuning_curves(runs)), budget_curves_figure(budget_curves(runs))):
        titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
        assert titles == [
            "synthetic · tiny ← big · budget trials3",
            "synthetic · tiny ← small · budget trials3",
        ]
        for ax in fig.axes:
            if not ax.get_title():
                continue
            teacher = ax.get_title().split("← ")[1].split(" ·")[0]
            labels = ax.get_legend_handles_labels()[1]
            assert f"kd ← {teacher}" in labels and "baseline" in labels, labels
        plt.close(fig)


def test_a_baseline_joins_the_teachers_of_its_own_dataset_student_and_budget_only():
    runs = pd.DataFrame(
        [
            _study("synthetic", None, "baseline", FLAT),
            _study("synthetic", "big", "kd", FLAT),
            _study("camvid", None, "baseline", FLAT),  # no KD on camvid: a panel of its own, teacher none
            _study("synthetic", None, "baseline", FLAT, budget="trials2"),
            _study("synthetic", "big", "kd", FLAT[:2], budget="trials2"),
        ]
    )
    assert set(tuning_curves(runs)) == {
        ("synthetic", "tiny", "big", "trials3"),
        ("synthetic", "tiny", "big", "trials2"),
        ("camvid", "tiny", None, "trials3"),
    }
    fig = tuning_curves_figure(tuning_curves(runs))
    assert "camvid · tiny ← none · budget trials3" in [ax.get_title() for ax in fig.axes]
    plt.close(fig)


def test_repeats_feed_the_budget_curves_and_the_first_repeat_the_tuning_curves():
    runs = pd.DataFrame(
        [
            _study("synthetic", None, "baseline", FLAT),
            _study("synthetic", None, "baseline", FLAT[::-1], repeat=1),
            _study("synthetic", "big", "kd", FLAT),
            _study("synthetic", "big", "kd", FLAT[::-1], repeat=1),
        ]
    )
    key = ("synthetic", "tiny", "big", "trials3")
    assert len(budget_curves(runs)[key]["kd"]) == 2
    assert tuning_curves(runs)[key]["kd"] == pytest.approx(list(np.maximum.accumulate(FLAT)))


def test_gaps_title_and_keys_name_the_teacher():
    fig = gaps_figure(_gaps_table())
    (ax,) = fig.axes
    assert ax.get_title() == "synthetic · tiny ← big · budget trials3"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["kd ← big", "fitnet ← big"]
    plt.close(fig)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_figure_is_a_png_and_a_vector_pdf_written_atomically(tmp_path, umask):
    made = {name: make() for name, make in FIGURES.items()}
    old = os.umask(umask)
    try:
        written = [p for name, fig in made.items() for p in save_figure(fig, tmp_path / f"{name}.png")]
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporaries
    for name, fig in made.items():
        png, pdf = ((tmp_path / f"{name}{ext}").read_bytes() for ext in (".png", ".pdf"))
        assert png[:4] == b"\x89PNG" and pdf[:5] == b"%PDF-" and pdf.rstrip().endswith(b"%%EOF")
        assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # TrueType fonts embedded, not Type 3
        assert b"/Subtype /Image" not in pdf  # vector: no raster image inside
        assert stat.S_IMODE((tmp_path / f"{name}.pdf").stat().st_mode) == 0o666 & ~umask
        assert not plt.fignum_exists(fig.number)  # closed once saved


def test_the_pdf_is_the_same_file_for_the_same_figure(tmp_path):
    a = save_figure(FIGURES["budget_curves"](), tmp_path / "a.png")[1].read_bytes()
    b = save_figure(FIGURES["budget_curves"](), tmp_path / "b.png")[1].read_bytes()
    assert a == b  # no creation date: rerunning the report does not change a paper's figure files


def test_the_png_is_at_print_resolution(tmp_path):
    from PIL import Image

    fig = FIGURES["gaps"]()
    width_in = fig.get_size_inches()[0]
    png, _ = save_figure(fig, tmp_path / "gaps.png")
    with Image.open(png) as image:
        assert image.width == pytest.approx(300 * width_in, abs=2)
        assert image.info["dpi"][0] == pytest.approx(300, abs=1)
