"""The whole pipeline on CPU-sized synthetic data: sweeps → finals → report → notebook."""

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from bench.config.compose import conf_dir
from bench.report.__main__ import main as report_main
from bench.report.table import COLUMNS
from bench.tune.finals import run_finals
from bench.tune.runner import run_sweep

from .conftest import sweep_args

pytestmark = pytest.mark.slow  # sweeps, finals and the notebook end to end

NOTEBOOK = conf_dir().parent / "notebooks" / "baseline_vs_kd.ipynb"


@pytest.fixture(scope="module")
def results(tmp_path_factory, teachers_dir) -> Path:
    tmp = tmp_path_factory.mktemp("pipeline")
    args = sweep_args(tmp, teachers_dir, "tune.trials=3", "tune.final_seeds=2")
    for method in ("baseline", "kd"):
        run_sweep([*args, f"method={method}"])
    with recorded("bench") as records:
        run_finals([*args, "tune.workers=2"])  # the four runs shared by two worker processes
    assert "final runs: 4 to train on 2 workers (this process and 1 more)" in records
    run_finals(args)  # all finished: reused as they are
    run_finals([*args, "tune.trials=2"])  # the same studies at a smaller budget: their first 2 slots
    return tmp


@contextlib.contextmanager
def recorded(logger: str) -> Iterator[list[str]]:
    """The messages ``logger`` emits inside the block (a module fixture cannot use caplog)."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield messages
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def test_finals_train_on_train_and_score_on_val_once_per_seed(results):
    from bench.results import load_rows

    rows = [r for r in load_rows(results / "finals") if r["tuning"]["budget"]["trials"] == 3]
    runs = sorted((r["method"], r["seed"]) for r in rows)
    assert runs == [("baseline", 0), ("baseline", 1), ("kd", 0), ("kd", 1)]
    for r in rows:
        assert (r["train_split"], r["split"]) == ("train", "val")
        assert r["config"]["train"]["iterations"] == 6  # the full schedule, not a trial's
        tuning = r["tuning"]
        assert tuning["trials"] == 3 and tuning["budget_met"]
        best = tuning["best_params"]
        assert r["config"]["train"]["optimizer"]["lr"] == pytest.approx(best["train.optimizer.lr"])


def test_report_on_the_pipeline(results):
    args = ["--finals", str(results / "finals"), "--out", str(results), "--resamples", "500"]
    assert report_main(args) == 0
    table = pd.read_csv(results / "tables" / "comparison.csv", dtype={"crossover_trials": str})
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert list(table["method"]) == ["baseline", "kd"]
    assert list(table["trials"]) == [3, 3] and list(table["seeds"]) == [2, 2]
    assert list(table["budget_check"]) == ["ok", "ok"]
    kd = table.set_index("method").loc["kd"]
    assert kd.teacher_miou > 0 and kd.extra_dims == "method.terms.kd.weight method.terms.kd.temperature"
    assert kd.ci_method in ("t", "none (constant Δ)") and 0 <= kd.pruned_frac <= 1
    assert len(set(table["settings_hash"])) == 2 and isinstance(kd.teacher_sha256, str)
    assert kd.crossover_trials in ("1", "2", "3", "not within 3")
    assert (results / "figures" / "budget_curves.pdf").is_file()
    # the same studies at 2 trials: a table of their own, from the first two slots
    small = pd.read_csv(results / "tables" / "comparison_trials2.csv")
    assert list(small["trials"]) == [2, 2] and list(small["budget_check"]) == ["ok", "ok"]
    assert list(small["study"]) == list(table["study"])


def test_notebook_executes_top_to_bottom(results):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel imports this checkout's bench, whichever checkout the environment was installed from
    path = os.pathsep.join(p for p in (str(NOTEBOOK.parents[1]), os.environ.get("PYTHONPATH")) if p)
    saved = {k: os.environ.get(k) for k in ("SEGKD_RESULTS", "PYTHONPATH")}
    os.environ.update(SEGKD_RESULTS=str(results), PYTHONPATH=path)
    try:
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # with the budget curves
