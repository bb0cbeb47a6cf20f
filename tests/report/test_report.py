"""The report on hand-made result rows: study identity, the equal-terms check, flags, files."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.report.__main__ import main as report_main
from bench.report.table import COLUMNS, ReportError, comparison, final_runs
from bench.teacher_split import make_record
from bench.tune.study import settings_hash

LR = {"distribution": {"name": "FloatDistribution", "attributes": {"low": 1e-4, "high": 0.1, "log": True}}}
SPACE = {
    "shared": {"train.optimizer.lr": {**LR, "default": 0.01}},
    "method": {},
}
KD_DIMS = {"method.terms.kd.weight": {**LR, "default": 1.0}}
SETTINGS = {
    "budget": {"kind": "trials", "trials": 4, "seconds": None},
    "sampler": "tpe",
    "sampler_seed": 0,
    "pruner": "median",
    "pruner_startup_trials": 5,
    "pruner_warmup_steps": 0,
    "trial_iterations": 100,
    "val_interval": 25,
    "protocol_hash": "abc",
    "space": SPACE,
    "teacher_sha256": None,
}
TEACHER = "a" * 64
# The study's hold-out and a tuning teacher trained on the rest of train: the honest KD study.
HOLDOUT = {"dataset": "synthetic", "train_images": 24, "holdout_size": 0.25, "holdout_seed": 0}
CLEAN_TUNING_TEACHER = {
    "sha256": "b" * 64,
    "trained_on": make_record("tune_train", "synthetic", 24, 0.25, 0),
    "holdout": HOLDOUT,
    "problem": None,
}


def _write(
    root,
    method,
    teacher,
    seed,
    miou,
    trials=4,
    curve=(0.3, 0.4, 0.4, 0.4),
    study=None,
    folder=None,
    tuning=None,
    teacher_sha=TEACHER,
    dataset="synthetic",
    **settings,
):
    space = settings.pop("space", {"shared": SPACE["shared"], "method": KD_DIMS} if teacher else SPACE)
    settings = {**copy.deepcopy(SETTINGS), "space": space, **settings}
    if teacher:
        settings.setdefault("teacher_sha256", None)
        settings["teacher_sha256"] = settings["teacher_sha256"] or teacher_sha
        settings.setdefault("tuning_teacher", CLEAN_TUNING_TEACHER)
    study = study or f"synthetic/tiny/{teacher}/{method}/trials{trials}"
    path = root / (folder or study) / f"seed{seed}" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "dataset": dataset,
        "student": "tiny",
        "teacher": teacher,
        "method": method,
        "seed": seed,
        "metrics": {"miou": miou / 100},
        "cost": {"step_time_ms": 10.0 + seed, "peak_mem_mb": 100.0 + seed},
        "teacher_checkpoint": {"path": "t.pt", "sha256": teacher_sha} if teacher else None,
        "tuning": {
            "study": study,
            "settings_hash": settings_hash(settings),
            "settings": settings,
            "best_trial": 1,
            "trials": trials,
            "pruned": 1,
            "tune_seconds": 60.0,
            "seconds_tolerance": 20.0,
            "holdout_miou": 0.4,
            "literature_default_counted": True,
            "literature_default_miou": 0.3,
            "best_so_far": list(curve),
            "holdout_values": list(curve),
            "budget_met": True,
            "teacher_miou": 0.385 if teacher else None,
            **(tuning or {}),
        },
    }
    path.write_text(json.dumps(row))


@pytest.fixture
def finals(tmp_path):
    for seed, (b, k) in enumerate([(70.0, 71.0), (71.0, 73.0), (72.0, 72.5)]):
        _write(tmp_path, "baseline", None, seed, b)
        _write(tmp_path, "kd", "big", seed, k, curve=(0.3, 0.3, 0.3, 0.5))  # improved at the end
        _write(tmp_path, "fitnet", "big", seed, b + 0.5, trials=3)  # a smaller realised budget
    return tmp_path


def _table(root, **kwargs) -> pd.DataFrame:
    return comparison(final_runs(root), **kwargs).set_index("method", drop=False)


def test_comparison_table(finals):
    table = _table(finals)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert list(table["method"]) == ["baseline", "fitnet", "kd"]  # baseline first
    assert set(table["teacher"]) == {"big"}  # the baseline sits in the teacher's comparison
    base, kd = table.loc["baseline"], table.loc["kd"]
    assert base.delta == 0.0 and math.isnan(base.p_value)
    # d = (1, 2, 0.5): mean 7/6, sd √(7/12), t = √7 on 2 df; p = 1 − √7/3; CI = mean ± t_.975,2 · sd/√3
    assert kd.delta == pytest.approx(7 / 6) and kd.p_value == pytest.approx(1 - math.sqrt(7) / 3)
    half = 4.302652729911275 * math.sqrt(7 / 12) / math.sqrt(3)
    assert (kd.delta_ci_low, kd.delta_ci_high) == pytest.approx((7 / 6 - half, 7 / 6 + half))
    assert kd.ci_method == "t" and kd.mde > 0
    assert kd.miou_mean == pytest.approx(np.mean([71.0, 73.0, 72.5]))
    assert kd.miou_std == pytest.approx(np.std([71.0, 73.0, 72.5], ddof=1))
    assert kd.step_time_ms == pytest.approx(11.0) and kd.peak_mem_mb == 102.0
    assert kd.teacher_miou == pytest.approx(38.5) and math.isnan(base.teacher_miou)
    assert kd.pruned_frac == pytest.approx(0.25) and kd.extra_dims == "method.terms.kd.weight"
    assert base.extra_dims == ""
    assert kd.undertuned and not base.undertuned  # +10 points in the last trial, far above the seed sd
    assert kd.budget_check == "ok" and base.budget_check == "ok"
    # Median tuning curves (bench.report.tuning_curves): kd's median best of 4 trials is 50 (the
    # median of the best of 4 is F⁻¹(0.5^¼ ≈ 0.84) and F(30) = 0.75), above anything the baseline
    # reaches (its best is 40); fitnet's trials equal the baseline's, whose median best of 1 trial is
    # already 40 (3 of 4 trials score 40). With 4 trials the exact bands cannot bound the upper curve:
    # the crossover may lie anywhere from 1 to beyond 4.
    assert kd.crossover_trials == "not within 4" and table.loc["fitnet"].crossover_trials == "1"
    assert kd.crossover_ci == "[1, not within 4]" == table.loc["fitnet"].crossover_ci
    assert base.crossover_trials == "" and base.crossover_ci == ""
    assert (
        table.loc["fitnet"].budget_check == "3 counted trials for a budget of 4; 3 trials vs the baseline's 4"
    )
    # Holm over the two KD methods of the comparison
    p = sorted([kd.p_value, table.loc["fitnet"].p_value])
    assert sorted(table["p_holm"].dropna()) == pytest.approx([2 * p[0], max(2 * p[0], p[1])])


def test_fault_finals_of_two_studies_were_mixed(tmp_path):
    """kd finals of a trials4 and a trials6 study in one folder: it said ok, 4 trials, Δ from trials6."""
    for seed in range(3):
        _write(tmp_path, "baseline", None, seed, 70.0 + seed, trials=4)
        _write(tmp_path, "kd", "big", seed, 71.0 + seed, trials=4)
        _write(tmp_path, "kd", "big", seed, 75.0 + seed, trials=6)
    with pytest.raises(ReportError) as err:
        comparison(final_runs(tmp_path))
    message = str(err.value)
    assert "synthetic/tiny/big/kd/trials4" in message and "synthetic/tiny/big/kd/trials6" in message
    assert "--study" in message
    # choosing is explicit: the trials6 study against the trials4 baseline is flagged, not mixed
    table = _table(tmp_path, studies=["*/trials6", "*/baseline/*"])
    assert table.loc["kd"].delta == pytest.approx(5.0) and table.loc["kd"].trials == 6
    assert "6 trials vs the baseline's 4" in table.loc["kd"].budget_check
    with pytest.raises(ReportError, match="matches no study"):
        comparison(final_runs(tmp_path), studies=["*/trials9"])


def test_same_name_other_settings_is_another_study(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0, folder="a")
        _write(tmp_path, "kd", "big", seed, 72.0, folder="b", sampler_seed=3)
    with pytest.raises(ReportError, match=r"come from 2 studies.*settings"):
        comparison(final_runs(tmp_path))


def test_duplicate_seeds_are_an_error_not_an_overwrite(tmp_path):
    for folder in ("clone_a", "clone_b"):
        _write(tmp_path, "kd", "big", 0, 71.0, folder=folder, study="synthetic/tiny/big/kd/trials4")
    _write(tmp_path, "baseline", None, 0, 70.0)
    with pytest.raises(ReportError, match=r"2 final runs for seed 0.*clone_a.*clone_b"):
        comparison(final_runs(tmp_path))


def test_fault_collapsed_baseline_space_is_flagged(tmp_path):
    """The baseline's shared space collapsed to its defaults vs a fully tuned KD method."""
    collapsed = {
        "shared": {
            "train.optimizer.lr": {
                "distribution": {"name": "CategoricalDistribution", "attributes": {"choices": [0.01]}},
                "default": 0.01,
            }
        },
        "method": {},
    }
    for seed in range(3):
        _write(tmp_path, "baseline", None, seed, 70.0 + seed, space=collapsed)
        _write(tmp_path, "kd", "big", seed, 71.0 + seed)
    kd = _table(tmp_path).loc["kd"]
    assert "shared search space differs from the baseline's (train.optimizer.lr)" in kd.budget_check


def test_extra_dimensions_outside_the_method_are_flagged(tmp_path):
    extra = {"shared": SPACE["shared"], "method": {**KD_DIMS, "train.optimizer.weight_decay": LR}}
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0, space=extra)
    kd = _table(tmp_path).loc["kd"]
    assert "outside method.* (train.optimizer.weight_decay)" in kd.budget_check
    assert kd.extra_dims == "method.terms.kd.weight train.optimizer.weight_decay"


def test_fault_time_budgets_were_not_checked(tmp_path):
    """kd with 4,500 realised training seconds against a baseline with 3,600 read ok."""
    time = {"budget": {"kind": "time", "trials": None, "seconds": 3600.0}}
    realised = {"baseline": 3600.0, "kd": 4500.0, "fitnet": 3680.0}
    for seed in range(2):
        for method, seconds in realised.items():
            tuning = {"tune_seconds": seconds, "seconds_tolerance": 100.0}
            teacher = None if method == "baseline" else "big"
            _write(tmp_path, method, teacher, seed, 70.0 + seed, tuning=tuning, **time)
    table = _table(tmp_path)
    assert "4500 s of training overshoot the budget of 3600 s" in table.loc["kd"].budget_check
    assert "4500 s of training vs the baseline's 3600 s" in table.loc["kd"].budget_check
    assert table.loc["fitnet"].budget_check == "ok"  # within one trial per worker


def test_different_teachers_across_kd_methods_are_flagged(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0)
        _write(tmp_path, "fitnet", "big", seed, 71.0, teacher_sha="b" * 64)
    table = _table(tmp_path)
    for method in ("kd", "fitnet"):
        assert "teacher checkpoints differ across the KD methods" in table.loc[method].budget_check
    assert table.loc["baseline"].budget_check == "ok"


def test_finals_with_another_teacher_than_the_study_are_flagged(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0, teacher_sha256="c" * 64)
    assert "the study was tuned with cccc" in _table(tmp_path).loc["kd"].budget_check


def test_fault_a_study_without_its_literature_default_is_flagged(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        no_default = {"literature_default_counted": False, "literature_default_miou": None}
        _write(tmp_path, "kd", "big", seed, 71.0, tuning=no_default)
    kd = _table(tmp_path).loc["kd"]
    assert "literature default (trial 0) is not among the counted trials" in kd.budget_check
    assert math.isnan(kd.default_holdout_miou)


def test_different_settings_are_flagged(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0, sampler_seed=1, trial_iterations=50)
    kd = _table(tmp_path).loc["kd"]
    assert "sampler_seed differs" in kd.budget_check and "trial_iterations differs" in kd.budget_check


def test_missing_baseline_is_flagged(tmp_path):
    _write(tmp_path, "kd", "big", 0, 71.0)
    kd = comparison(final_runs(tmp_path)).iloc[0]
    assert math.isnan(kd.delta) and "no tuned baseline" in kd.budget_check


def test_constant_delta_is_reported_not_nan(tmp_path):
    for seed in range(3):
        _write(tmp_path, "baseline", None, seed, 70.0 + seed)
        _write(tmp_path, "kd", "big", seed, 71.0 + seed)
    kd = _table(tmp_path).loc["kd"]
    assert kd.delta == pytest.approx(1.0) and kd.p_value == 0.25  # exact sign-flip test, 2/2³
    assert math.isnan(kd.delta_ci_low) and kd.ci_method == "none (constant Δ)"


def test_bca_needs_ten_seeds(finals):
    with pytest.raises(ReportError, match="at least 10 paired seeds"):
        comparison(final_runs(finals), ci="bca")


def test_report_writes_tables_and_figures(finals, tmp_path, capsys):
    out = tmp_path / "out"
    assert report_main(["--finals", str(finals), "--out", str(out)]) == 0
    csv = pd.read_csv(out / "tables" / "comparison.csv")
    assert list(csv.columns[: len(COLUMNS)]) == COLUMNS and len(csv) == 3
    assert {"budget_check", "extra_dims", "teacher_miou", "pruned_frac", "p_holm", "mde"} <= set(csv.columns)
    md = (out / "tables" / "comparison.md").read_text()
    assert md.startswith("**WARNING")
    head = md.split("| dataset")[0]
    assert "fitnet: 3 counted trials for a budget of 4" in head and "kd: undertuned" in head
    assert "\\begin{tabular}" in (out / "tables" / "comparison.tex").read_text()
    printed = capsys.readouterr()
    for name in ("gaps", "tuning_curves", "budget_curves"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert f"wrote {out / 'figures' / name}.pdf" in printed.out
    assert "crossover_trials" in csv.columns and "crossover_ci" in csv.columns
    curves = pd.read_csv(out / "tables" / "budget_curves.csv")  # the budget curves as numbers
    assert sorted(set(curves["method"])) == ["baseline", "fitnet", "kd"] and list(curves["k"][:4]) == [
        1,
        2,
        3,
        4,
    ]
    assert curves[curves.method == "kd"]["expected_unbiased"].iloc[-1] == pytest.approx(
        50.0
    )  # kd's best trial
    err = printed.err
    assert "fitnet: 3 counted trials for a budget of 4" in err and "kd: undertuned" in err


def test_report_names_mixed_studies_on_the_command_line(tmp_path, capsys):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0, trials=4)
        _write(tmp_path, "kd", "big", seed, 72.0, trials=6)
    assert report_main(["--finals", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "kd/trials4" in capsys.readouterr().err
    args = ["--finals", str(tmp_path), "--out", str(tmp_path / "out"), "--study", "*/trials4"]
    assert report_main(args) == 0


def test_report_without_finals_is_a_clear_error(tmp_path, capsys):
    assert report_main(["--finals", str(tmp_path)]) == 2
    assert "make final" in capsys.readouterr().err


def test_fault_collapsed_space_passed_every_old_check(tmp_path):
    """A baseline swept over its shared space collapsed to the defaults: the old settings saw nothing."""
    import shutil

    import yaml

    from bench.config.compose import conf_dir, load_config
    from bench.report.table import SHARED_SETTINGS
    from bench.tune.space import load_space
    from bench.tune.study import study_settings

    from ..conftest import TINY

    sweeps = tmp_path / "sweeps"
    shutil.copytree(conf_dir().parent / "sweeps", sweeps)
    full = load_space(load_config(TINY))
    shared = sweeps / "train" / "synthetic" / "default.yaml"
    shared.write_text(
        yaml.safe_dump(
            {"params": {k: {"type": "categorical", "choices": [v]} for k, v in full.defaults.items()}}
        )
    )

    def settings(*overrides):
        cfg = load_config([*TINY, *overrides])
        return study_settings(cfg, load_space(cfg))

    tuned, collapsed = settings(), settings(f"tune.sweeps_dir={sweeps}")
    assert all(tuned[k] == collapsed[k] for k in SHARED_SETTINGS)  # every setting the old check compared
    assert tuned["space"]["shared"] != collapsed["space"]["shared"]
    for seed in range(2):
        _write(tmp_path / "finals", "baseline", None, seed, 70.0, space=collapsed["space"])
        _write(tmp_path / "finals", "kd", "big", seed, 71.0, space=tuned["space"])
    kd = _table(tmp_path / "finals").loc["kd"]
    assert "shared search space differs from the baseline's (train.optimizer.lr" in kd.budget_check


def test_one_table_per_budget_from_the_same_studies(tmp_path, capsys):
    """Finals of one study at two budgets (make final TRIALS=2, then TRIALS=4): one table each."""
    for trials, gain in ((2, 0.5), (4, 1.5)):
        budget = {"budget": {"kind": "trials", "trials": trials, "seconds": None}}
        for seed in range(3):
            for method, teacher, miou in (("baseline", None, 70.0 + seed), ("kd", "big", 70.0 + seed + gain)):
                study = f"synthetic/tiny/{teacher}/{method}/trials"
                folder = f"{study}/trials{trials}"
                _write(
                    tmp_path, method, teacher, seed, miou, trials, study=study, folder=folder, tuning=budget
                )
    out = tmp_path / "out"
    assert report_main(["--finals", str(tmp_path), "--out", str(out), "--budgets", "2,4"]) == 0
    for trials, gain in ((2, 0.5), (4, 1.5)):
        csv = pd.read_csv(out / "tables" / f"comparison_trials{trials}.csv").set_index("method")
        assert csv.loc["kd", "delta"] == pytest.approx(gain) and csv.loc["kd", "trials"] == trials
        assert (csv["budget_check"] == "ok").all() and set(csv["budget"]) == {f"trials{trials}"}
    # comparison.csv is the largest budget's table
    assert pd.read_csv(out / "tables" / "comparison.csv").set_index("method").loc["kd", "trials"] == 4
    assert "budget trials2:" in capsys.readouterr().out
    assert report_main(["--finals", str(tmp_path), "--out", str(out), "--budgets", "2,8"]) == 2
    assert "make final TRIALS=N" in capsys.readouterr().err
    assert report_main(["--finals", str(tmp_path), "--out", str(out), "--budgets", "2,x"]) == 2


def _repeats(root, kd_seed_r1=1, kd_repeats=(0, 1)):
    """Two repeats (independent studies) of baseline and kd, three seeds each."""
    scores = {0: ([70.0, 71.0, 72.0], [71.0, 73.0, 72.5]), 1: ([69.0, 70.0, 71.0], [72.0, 72.0, 73.0])}
    for repeat, (base, kd) in scores.items():
        tag = "trials" + (f"/r{repeat}" if repeat else "")
        for seed in range(3):
            kw = {"tuning": {"repeat": repeat}, "repeat": repeat}
            study = f"synthetic/tiny/None/baseline/{tag}"
            _write(root, "baseline", None, seed, base[seed], study=study, sampler_seed=repeat, **kw)
            if repeat in kd_repeats:
                seed_kd = kd_seed_r1 if repeat else 0
                study = f"synthetic/tiny/big/kd/{tag}"
                _write(root, "kd", "big", seed, kd[seed], study=study, sampler_seed=seed_kd, **kw)


def test_repeats_aggregate_as_a_paired_comparison_of_repeat_means(tmp_path):
    from scipy import stats

    _repeats(tmp_path)
    table = _table(tmp_path)
    base, kd = table.loc["baseline"], table.loc["kd"]
    assert base.repeats == kd.repeats == 2 and kd.seeds == 3
    d = np.array([np.mean([71.0, 73.0, 72.5]) - 71.0, np.mean([72.0, 72.0, 73.0]) - 70.0])
    assert kd.delta == pytest.approx(d.mean()) == pytest.approx(1.75)
    low, high = stats.t.interval(0.95, 1, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(2))
    assert (kd.delta_ci_low, kd.delta_ci_high) == pytest.approx((low, high))
    assert kd.p_value == pytest.approx(stats.ttest_1samp(d, 0).pvalue) and kd.ci_method == "t over repeats"
    # the tuning variance widens the interval: seeds pooled as if from one study would exclude 0
    pooled = stats.ttest_rel([71.0, 73.0, 72.5, 72.0, 72.0, 73.0], [70.0, 71.0, 72.0, 69.0, 70.0, 71.0])
    assert pooled.pvalue < 0.05 < kd.p_value
    assert kd.miou_mean == pytest.approx(np.mean([71.0, 73.0, 72.5, 72.0, 72.0, 73.0]))
    assert kd.budget_check == "ok" and base.budget_check == "ok"
    assert kd.study == "synthetic/tiny/big/kd/trials; synthetic/tiny/big/kd/trials/r1"
    out = tmp_path / "out"
    assert report_main(["--finals", str(tmp_path), "--out", str(out), "--resamples", "200"]) == 0
    assert (out / "figures" / "budget_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_equal_terms_are_checked_in_every_repeat(tmp_path):
    _repeats(tmp_path, kd_seed_r1=7)  # repeat 1 of kd tuned with another sampler seed
    kd = _table(tmp_path).loc["kd"]
    assert kd.budget_check == "r1: sampler_seed differs from the baseline's"
    _repeats(tmp_path / "b", kd_repeats=(0,))  # kd ran one repeat, the baseline two
    kd = _table(tmp_path / "b").loc["kd"]
    assert "repeats [0] vs the comparison's [0, 1]" in kd.budget_check
