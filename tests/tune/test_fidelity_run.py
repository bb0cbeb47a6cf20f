"""`make fidelity` end to end on a tiny study: the chosen trials retrain at the final schedule on the
tuning split and the summary holds ρ for them."""

import json

import pytest

from bench.fidelity import main as fidelity_main
from bench.results import load_rows
from bench.tune.runner import run_sweep

from ..conftest import sweep_args

pytestmark = pytest.mark.slow  # a sweep and four trainings


def test_fidelity_retrains_top_and_random_trials_at_the_final_schedule(tmp_path, capsys):
    args = sweep_args(
        tmp_path, None, "method=baseline", "tune.trials=5", "tune.trial_iterations=2", "train.iterations=6",
        f"tune.fidelity_dir={tmp_path / 'fidelity'}", "tune.fidelity_k=2",
    )  # fmt: skip
    run_sweep(args)
    fidelity_main(args)
    study = "synthetic/deeplabv3_tiny/none/baseline/trials"
    summary = json.loads((tmp_path / "fidelity" / study / "fidelity.json").read_text())
    assert summary["configurations"] == 4 and len(summary["top"]) == 2
    rows = load_rows(tmp_path / "fidelity")
    assert len(rows) == 4
    for r in rows:
        assert r["config"]["train"]["iterations"] == 6  # the final schedule, not the trials' 2
        assert (r["train_split"], r["split"]) == ("tune_train", "tune_holdout")
        number = r["tuning"]["fidelity"]["trial"]
        assert summary["trials"][str(number)]["final"] == r["metrics"]["miou"]
    printed = capsys.readouterr().out
    assert f"{study}: Spearman ρ = " in printed
    if summary["tuning_tied"]:  # tiny trials can all score alike: then that is what it must say
        assert "every configuration scored the same at the tuning schedule" in printed and summary["misranks"]
    else:
        assert "95% CI [" in printed
    fidelity_main(args)  # a rerun reuses the finished runs
    assert len(load_rows(tmp_path / "fidelity")) == 4
