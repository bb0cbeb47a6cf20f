"""Sweeps end to end on CPU: defaults first, exact budgets, resume, failures, splits, storage errors."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import optuna
import pytest
import torch
from optuna.trial import TrialState

from bench.config.budget import Budget
from bench.config.compose import load_config
from bench.config.schema import TermConfig
from bench.data import build_split
from bench.errors import BenchError, ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm
from bench.results import load_rows
from bench.tune import heartbeat as hb
from bench.tune import study as st
from bench.tune.runner import Sweep, run_sweep
from bench.tune.space import load_space

from ..conftest import sweep_args

pytestmark = pytest.mark.slow  # sweeps end to end, in worker processes


@dataclass
class _FaultConfig(TermConfig):
    kind: str = "oom"  # oom | interrupt | sigint | nan
    calls: list[int] | None = None  # which forward calls (0-based, counted per process) misbehave


CALLS: dict[str, int] = {}


@TERMS.register("_test_fault")
class _Fault(LossTerm):
    Config = _FaultConfig
    needs_teacher = False

    def forward(self, student, teacher, labels=None, step=0):
        n = CALLS[self.cfg.kind] = CALLS.get(self.cfg.kind, -1) + 1
        value = student.logits_low.float().mean() * 0
        if self.cfg.calls is None or n in self.cfg.calls:
            if self.cfg.kind == "oom":
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            if self.cfg.kind == "interrupt":
                raise KeyboardInterrupt
            if self.cfg.kind == "sigint":  # Ctrl-C: the trainer checkpoints, then stops
                signal.raise_signal(signal.SIGINT)
                return value
            return value + float("nan")
        return value


def _study(args):
    sweep = Sweep.open(args)
    return sweep.study, sweep


def test_trial_zero_is_the_literature_default(tmp_path, teachers_dir):
    args = sweep_args(tmp_path, teachers_dir, "method=kd", "tune.trials=2")
    sweep = run_sweep(args)
    first = sweep.study.trials[0]
    assert first.user_attrs["literature_default"] is True
    space = load_space(load_config(args))
    assert first.params == space.defaults
    assert (
        first.params["method.terms.kd.weight"] == 1.0 and first.params["method.terms.kd.temperature"] == 1.0
    )
    assert sweep.study.trials[1].params != first.params


def test_concurrent_worker_processes_meet_the_budget_exactly(tmp_path):
    args = sweep_args(tmp_path, None, "tune.trials=5", "tune.workers=3")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.sweep", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    study, _ = _study(args)
    tally = st.tally(study)
    assert len(tally.counted) == 5 and not tally.running
    assert {t.user_attrs["owner"]["pid"] for t in tally.counted}  # trials ran in worker processes
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)
    # one progress line per finished trial (besides the lines of running trials, which name their step)
    lines = result.stdout.splitlines()
    assert any(" step 2/6 loss " in line for line in lines)
    finished = [line for line in lines if line.startswith("[baseline] trial") and " step " not in line]
    assert len(finished) == len([t for t in study.trials if t.user_attrs.get("fail_reason") != "over_budget"])
    # common random numbers: one worker samples exactly what three did, slot by slot (all 5 slots
    # are TPE start-up trials)
    single = run_sweep(sweep_args(tmp_path / "one", None, "tune.trials=5", "tune.workers=1"))
    assert [t.params for t in st.counted_by_slot(single.study)] == [
        t.params for t in st.counted_by_slot(study)
    ]


def test_repeats_run_concurrently_on_one_set_of_workers(tmp_path):
    """tune.repeats=2 with WORKERS=2: worker i starts on repeat i, both repeats train at once, and a
    worker whose repeat has no trial left to start moves on to the other; every budget stays exact."""
    # trials of a few seconds: the workers start within a second of each other (the second one a
    # standby process that imported meanwhile), so neither can finish both repeats alone
    args = sweep_args(
        tmp_path, None, "tune.trials=3", "tune.workers=2", "tune.repeats=2", "tune.trial_iterations=60"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.sweep", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    studies = [_study(st.repeat_overrides(args, r))[0] for r in range(2)]
    assert [s.study_name.endswith("/r1") for s in studies] == [False, True]
    counted = [st.tally(s).counted for s in studies]
    assert [len(c) for c in counted] == [3, 3]
    owners = [{t.user_attrs["owner"]["pid"] for t in c} for c in counted]
    assert len(owners[0] | owners[1]) == 2  # two worker processes ...
    first = [min(c, key=lambda t: t.datetime_start) for c in counted]
    last = [max(c, key=lambda t: t.datetime_complete) for c in counted]
    # ... and the repeats overlapped in time (each started before the other finished)
    assert first[1].datetime_start < last[0].datetime_complete
    assert first[0].datetime_start < last[1].datetime_complete
    assert result.stdout.count("\nstudy synthetic/") == 2  # a summary per repeat


def test_ctrl_c_leaves_the_study_resumable_and_resume_tops_up_exactly(tmp_path):
    CALLS.clear()
    fault = (
        "+method.terms.fault={term: _test_fault, kind: interrupt, calls: [14]}"  # 3rd trial (6 steps each)
    )
    args = sweep_args(tmp_path, None, "tune.trials=4", fault)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(args)
    study, _ = _study(args)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL, TrialState.WAITING]
    assert study.trials[2].user_attrs["fail_reason"] == "interrupted"
    # its replacement waits in the same slot with the same draw (attempt 0): nothing shifts
    assert {k: study.trials[3].user_attrs[k] for k in ("replaces", "slot", "attempt")} == {
        "replaces": 2,
        "slot": 2,
        "attempt": 0,
    }
    assert not list(tmp_path.rglob("*.tmp"))
    run_sweep(args)  # the same command resumes the study
    study, _ = _study(args)
    assert len(st.tally(study).counted) == 4


def test_ctrl_c_removes_the_checkpoint_of_the_interrupted_trial(tmp_path):
    CALLS.clear()
    fault = "+method.terms.fault={term: _test_fault, kind: sigint, calls: [8]}"  # 2nd trial, step 3
    args = sweep_args(tmp_path, None, "tune.trials=3", fault)
    with pytest.raises(KeyboardInterrupt, match="rerun the same command to continue the study"):
        run_sweep(args)
    study, _ = _study(args)
    assert study.trials[1].user_attrs["fail_reason"] == "interrupted"
    assert not list((tmp_path / "trials").rglob("*.pt"))
    run_sweep(args)  # at budget: nothing more runs
    assert len(_study(args)[0].trials) == len(study.trials)


def test_fault_an_interrupted_literature_default_is_re_enqueued(tmp_path):
    """Trial 0 failed without counting (Ctrl-C): it used to vanish, leaving no default in the study."""
    CALLS.clear()
    fault = "+method.terms.fault={term: _test_fault, kind: interrupt, calls: [0]}"
    args = sweep_args(tmp_path, None, "tune.trials=2", fault)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(args)
    run_sweep(args)
    study, sweep = _study(args)
    default = st.literature_default(study)
    assert default is not None and default.params == sweep.space.defaults
    assert default.state == TrialState.COMPLETE and study.trials[0].user_attrs["fail_reason"] == "interrupted"
    from bench.tune.finals import study_summary

    summary = study_summary(study, sweep.cfg.tune)
    assert summary["literature_default_counted"] and summary["literature_default_miou"] == default.value


def test_stale_trials_of_dead_workers_are_replaced(tmp_path):
    args = sweep_args(tmp_path, None, "tune.trials=2")
    study, sweep = _study(args)
    trial = study.ask(sweep.space.distributions)
    trial.set_user_attr("owner", {"host": hb.host_identity(), "pid": 2**22 + 12345})  # no such process
    run_sweep(args)
    study, _ = _study(args)
    assert study.trials[0].user_attrs["fail_reason"] == "stale"
    assert len(st.tally(study).counted) == 2


def test_diverging_trials_fail_with_their_reason_and_count(tmp_path):
    args = sweep_args(tmp_path, None, "tune.trials=2", "+method.terms.fault={term: _test_fault, kind: nan}")
    sweep = run_sweep(args)
    assert [t.user_attrs["fail_reason"] for t in sweep.study.trials] == ["nonfinite", "nonfinite"]
    assert "NaN/inf" in sweep.study.trials[0].user_attrs["error"]
    assert len(st.tally(sweep.study).counted) == 2


def test_oom_trials_are_not_counted_and_the_sweep_goes_on(tmp_path):
    CALLS.clear()
    args = sweep_args(
        tmp_path, None, "tune.trials=2", "+method.terms.fault={term: _test_fault, kind: oom, calls: [0]}"
    )
    sweep = run_sweep(args)
    states = [(t.state, t.user_attrs.get("fail_reason")) for t in sweep.study.trials]
    assert states == [(TrialState.FAIL, "oom"), (TrialState.COMPLETE, None), (TrialState.COMPLETE, None)]


def test_persistent_crashes_stop_the_sweep(tmp_path):
    args = sweep_args(
        tmp_path,
        None,
        "tune.trials=5",
        "tune.max_failed_trials=1",
        "+method.terms.fault={term: _test_fault, kind: oom}",
    )
    with pytest.raises(BenchError, match="max_failed_trials=1"):
        run_sweep(args)


def test_trials_never_touch_the_reporting_split(tmp_path):
    args = sweep_args(tmp_path, None, "tune.trials=2")
    run_sweep(args)
    rows = load_rows(tmp_path / "trials")
    assert rows and {(r["train_split"], r["split"]) for r in rows} == {("tune_train", "tune_holdout")}
    cfg = load_config(args)
    train, held = build_split(cfg.dataset, "tune_train"), build_split(cfg.dataset, "tune_holdout")
    assert not set(train.indices) & set(held.indices)
    val = build_split(cfg.dataset, "val")
    val_images = {bytes(val[i][0].numpy()) for i in range(len(val))}
    assert not val_images & {bytes(held[i][0].numpy()) for i in range(len(held))}
    assert not list((tmp_path / "trials").rglob("model.pt"))  # trials keep only their result rows


def test_changed_settings_on_resume_are_refused(tmp_path):
    run_sweep(sweep_args(tmp_path, None, "tune.trials=1"))
    with pytest.raises(ConfigError, match=r"other settings.*sampler_seed"):
        Sweep.open(sweep_args(tmp_path, None, "tune.trials=1", "tune.sampler_seed=5"))


def test_a_sweep_refuses_checkpoints_picked_on_its_hold_out(tmp_path):
    """eval.select=best_on_val in a trial would pick the checkpoint on the hold-out it is scored on."""
    with pytest.raises(ConfigError, match=r"eval.select=best_on_val picks each trial's checkpoint"):
        Sweep.open(sweep_args(tmp_path, None, "tune.trials=1", "eval.select=best_on_val"))
    assert not (tmp_path / "studies").exists() or not any((tmp_path / "studies").iterdir())


def test_unreachable_storage_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot open study storage sqlite:////nonexistent"):
        Sweep.open(sweep_args(tmp_path, None, "tune.storage=sqlite:////nonexistent/dir/studies.db"))


def test_storage_credentials_are_never_printed_or_written(tmp_path):
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/studies"
    result = subprocess.run(
        [sys.executable, "-m", "bench.sweep", *sweep_args(tmp_path, None, f"tune.storage='{url}'")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "cannot open study storage postgresql://alice:***@127.0.0.1:1/studies" in result.stderr
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"s3cr3t-pw" not in path.read_bytes()


def test_masking_helpers():
    from bench.utils.secrets import mask_in, mask_url

    assert mask_url("mysql://u:p%40ss@h/db") == "mysql://u:***@h/db"
    assert mask_url("redis://h:6379/0?password=x&db=1") == "redis://h:6379/0?password=***&db=1"
    assert mask_url("results/studies/optuna.journal") == "results/studies/optuna.journal"
    assert "hunter2" not in mask_in("auth failed for hunter2", "postgresql://bob:hunter2@h/db")


def test_study_name_and_storage(tmp_path):
    cfg = load_config(sweep_args(tmp_path, None, "method=kd", "tune.trials=7"))
    assert st.study_name(cfg) == "synthetic/deeplabv3_tiny/deeplabv3_small/kd/trials"  # no amount
    base = load_config(sweep_args(tmp_path, None, "tune.budget=time", "tune.seconds=90"))
    assert st.study_name(base) == "synthetic/deeplabv3_tiny/none/baseline/time"
    assert Budget.of(cfg.tune).label == "trials7" and Budget.of(base.tune).label == "time90s"
    assert isinstance(st.open_storage(cfg.tune), optuna.storages.JournalStorage)
