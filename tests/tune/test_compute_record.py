"""Compute records and device-seconds: what each trial ran on, and a time budget that counts every
device a trial held (issue 25 item 4, issue 28 item 1)."""

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from bench.config.budget import Budget
from bench.config.compose import load_config
from bench.tune import compute_record
from bench.tune import study as st
from bench.tune.compute_record import COMPUTE, describe, study_compute, trial_compute
from bench.tune.runner import run_sweep
from bench.tune.status import study_status

from ..conftest import sweep_args

LR = FloatDistribution(1e-4, 0.1, log=True)


def _record(devices, threads=1, gpus=0, probe=4.0):
    return {
        "device_name": "NVIDIA H100" if gpus else "AMD EPYC",
        "gpus_per_trial": gpus,
        "processes": max(gpus, 1),
        "threads": threads,
        "workers": 1,
        "devices": devices,
        "probe_ms": probe,
    }


def _trial(train_seconds, devices, value=0.3):
    attrs = {
        "train_seconds": train_seconds,
        "device_seconds": train_seconds * devices,
        COMPUTE: _record(devices, gpus=devices),
        "step_time_ms": 50.0,
    }
    return create_trial(value=value, params={"lr": 0.01}, distributions={"lr": LR}, user_attrs=attrs)


def test_fault_n_gpus_per_trial_bought_n_times_the_work_per_budget_second():
    """Trials of 4 GPUs each, 10 s of training each: a 60 s time budget is spent by two of them
    (80 GPU-seconds), not six (the old count: the seconds of the slowest rank, once)."""
    study = optuna.create_study(direction="maximize")
    for _ in range(6):
        study.add_trial(_trial(10.0, devices=4))
    budget = Budget("time", 60)
    assert st.tally(study).seconds == 240.0
    assert len(st.prefix(study, budget)) == 2
    assert st.prefix_met(st.prefix(study, budget), budget)
    assert st.seconds_tolerance(study) == 40.0  # one trial per worker, in device-seconds


def test_a_running_trial_spends_its_devices_seconds():
    study = optuna.create_study(direction="maximize")
    running = study.ask({"lr": LR})
    running.set_user_attr(COMPUTE, _record(8, gpus=8))
    start = study.trials[0].datetime_start.timestamp()
    tune = load_config(["tune.budget=time", "tune.seconds=60", "output_dir=x"]).tune
    assert st.budget_left(study, tune, now=start + 7.0)  # 56 GPU-seconds so far
    assert not st.budget_left(study, tune, now=start + 8.0)  # 64: the budget is taken


def test_an_older_trial_without_a_record_counts_its_training_seconds_once():
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=0.3, params={}, distributions={}, user_attrs={"train_seconds": 12.0}))
    assert st.tally(study).seconds == 12.0 and study_compute(st.tally(study).counted) == {}


def test_trial_compute_counts_gpus_on_cuda_and_threads_on_cpu(tmp_path, monkeypatch):
    cfg = load_config(sweep_args(tmp_path, None, "tune.gpus_per_trial=2", "tune.workers=3"))
    cpu = trial_compute(cfg)
    assert cpu["gpus_per_trial"] == 0 and cpu["processes"] == 2
    assert cpu["threads"] == torch.get_num_threads() == cpu["devices"]
    assert cpu["workers"] == 3 and cpu["probe_ms"] > 0 and cpu["device_name"]
    monkeypatch.setattr(compute_record, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(compute_record, "device_name", lambda device: "NVIDIA H100")
    monkeypatch.setattr(compute_record, "probe_ms", lambda device: 0.4)
    gpu = trial_compute(cfg)
    assert gpu["gpus_per_trial"] == 2 == gpu["devices"] and gpu["device_name"] == "NVIDIA H100"


def test_study_compute_lists_what_differs_and_takes_medians():
    trials = [_trial(10.0, 1), _trial(10.0, 1), _trial(10.0, 2)]
    trials[2].user_attrs[COMPUTE]["probe_ms"] = 9.0
    c = study_compute(trials)
    assert c["gpus_per_trial"] == [1, 2] and c["probe_ms"] == 4.0 and c["step_time_ms"] == 50.0
    assert "1/2 GPUs/trial" in describe(c) and describe({}) == "compute not recorded"


@pytest.mark.slow
def test_a_time_budget_sweep_records_compute_and_counts_thread_seconds(tmp_path):
    args = sweep_args(tmp_path, None, "tune.budget=time", "tune.seconds=1", "tune.workers=1")
    with torch.inference_mode(False):
        sweep = run_sweep(args)
    trials = [t for t in sweep.study.trials if t.state == TrialState.COMPLETE]
    assert trials
    for t in trials:
        record = t.user_attrs[COMPUTE]
        assert record["devices"] == record["threads"] >= 1 and record["gpus_per_trial"] == 0
        spent = t.user_attrs["train_seconds"] * record["devices"]
        assert t.user_attrs["device_seconds"] == pytest.approx(spent)
        assert t.user_attrs["step_time_ms"] > 0
    stored = sweep.study.user_attrs[COMPUTE]
    assert stored == study_compute(st.tally(sweep.study).counted) and stored["recorded"] == len(trials)
    line = study_status(sweep.study, grace=60).line()
    assert "threads × 1 workers" in line and "probe" in line
