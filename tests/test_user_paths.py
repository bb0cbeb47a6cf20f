"""The paths a real user falls into (issue 26): a wrong data root, weights that cannot be downloaded, a
study stuck on failures, an empty study among the finals, Ctrl-C, a misspelt make variable, ``--help``,
an unwritable output folder. Each test runs the user's command as they would and checks what they read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench import final, forget, preflight, sweep, teacher
from bench.cli import run_cli
from bench.config.schema import TermConfig
from bench.errors import BenchError, DataError
from bench.methods import TERMS
from bench.methods.base import LossTerm
from bench.tune import recovery
from bench.tune import study as st
from bench.tune.runner import Sweep, run_sweep

from .conftest import sweep_args
from .test_real_data_e2e import SHRINK

pytestmark = pytest.mark.slow  # commands end to end


@dataclass
class _UserFaultConfig(TermConfig):
    kind: str = "data"  # data: a DataError (a user's mistake); oom: a crash that counts against the limit
    calls: list[int] | None = None  # which forward calls (0-based, counted per process) fail


CALLS: dict[str, int] = {}


@TERMS.register("_test_user_fault")
class _UserFault(LossTerm):
    Config = _UserFaultConfig
    needs_teacher = False

    def forward(self, student, teacher, labels=None, step=0):
        import torch

        n = CALLS[self.cfg.kind] = CALLS.get(self.cfg.kind, -1) + 1
        if self.cfg.calls is None or n in self.cfg.calls:
            if self.cfg.kind == "data":
                raise DataError("image /data/x.jpg is truncated (simulated)")
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return student.logits_low.float().mean() * 0


def _cli(main, args, capsys, config="run", flags=("--yes",)):
    """Run an entry point as ``python -m`` would; (exit status, stdout, stderr)."""
    try:
        run_cli(main, config, "", args, flags=flags)
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# What the README's real-data walk-through passes as ARGS on a small copy.
ADE_SHRINK = ["dataset=ade20k", *SHRINK]


def _dirs(tmp_path: Path) -> list[str]:
    return [
        f"tune.studies_dir={tmp_path / 'studies'}",
        f"tune.trials_dir={tmp_path / 'trials'}",
        f"tune.finals_dir={tmp_path / 'finals'}",
        f"teachers_dir={tmp_path / 'teachers'}",
    ]


def _names(tmp_path: Path) -> list[str]:
    journal = tmp_path / "studies" / st.JOURNAL
    if not journal.exists():
        return []
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.get_all_study_names(storage)


# ---------------------------------------------------------------- case 1: a wrong data root
def test_a_wrong_root_stops_before_the_study_then_the_right_root_runs_the_full_budget(
    tmp_path, monkeypatch, capsys
):
    from bench.perf.data import write_layout

    root = write_layout(
        "ade20k", tmp_path / "data" / "ADEChallengeData2016", train_images=3, val_images=2, size=(64, 96)
    )
    args = [*ADE_SHRINK, *_dirs(tmp_path), "tune.trials=2"]
    monkeypatch.setenv("SEGKD_DATA_ROOT", str(tmp_path / "nope"))
    code, _, err = _cli(sweep.main, args, capsys)
    assert code == 2
    first = err.strip().splitlines()[0]
    assert first.startswith("error: dataset root ") and "nope/ADEChallengeData2016" in first
    assert "pass dataset.root=" in first and "$SEGKD_DATA_ROOT" in first  # cause and fix in one line
    assert "Traceback" not in err and _names(tmp_path) == []  # no study was created
    monkeypatch.setenv("SEGKD_DATA_ROOT", str(root.parent))
    code, _, err = _cli(sweep.main, args, capsys)
    assert code == 0, err
    study = Sweep.open(args).study
    assert len(st.tally(study).counted) == 2 and st.tally(study).uncounted_failures == 0


def test_a_missing_teacher_or_split_is_refused_before_the_study(tmp_path, capsys):
    args = sweep_args(tmp_path, None, "method=kd", "tune.trials=2")
    code, _, err = _cli(sweep.main, args, capsys)
    assert code == 2 and "no teacher checkpoint at" in err and "make teacher" in err
    assert _names(tmp_path) == []
    code, _, err = _cli(sweep.main, [*sweep_args(tmp_path), "dataset.holdout_size=100"], capsys)
    assert code == 2 and "dataset.holdout_size=100" in err and _names(tmp_path) == []


# ---------------------------------------------------------------- case 2: weights offline, then a file
def test_offline_weights_are_named_at_once_then_a_local_file_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import time

    args = sweep_args(tmp_path, None, "student=deeplabv3_r18_tv", "tune.trials=1")
    started = time.perf_counter()
    code, out, err = _cli(sweep.main, [*args, "student.encoder_weights=imagenet"], capsys)
    assert code == 2 and time.perf_counter() - started < 15  # no 23 s of hub retries
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: student.encoder_weights=imagenet: the weights of 'resnet18'")
    assert "https://huggingface.co/smp-hub/resnet18.imagenet/resolve/" in line and "model.safetensors" in line
    assert "student.encoder_weights=/path/to/model.safetensors" in line
    assert "Retry" not in out + err and _names(tmp_path) == []
    # the offline way: the encoder's weights as a local file
    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    weights = tmp_path / "model.safetensors"
    save_file(smp.encoders.get_encoder("resnet18", weights=None).state_dict(), str(weights))
    code, out, err = _cli(sweep.main, [*args, f"student.encoder_weights={weights}"], capsys)
    assert code == 0, err
    assert len(st.tally(Sweep.open([*args, f"student.encoder_weights={weights}"]).study).counted) == 1


def test_an_unreachable_hub_is_one_look_not_retries(monkeypatch):
    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(preflight, "reachable", lambda url: calls.append(url) or "huggingface.co unreachable")
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: None)
    from types import SimpleNamespace

    model = SimpleNamespace(encoder="resnet18", encoder_weights="imagenet")
    with pytest.raises(BenchError, match=r"huggingface\.co unreachable"):
        preflight.check_weights(model, "student")
    assert len(calls) == 1


# ---------------------------------------------------------------- recovery from a user's mistake
def test_a_user_error_in_a_trial_stops_the_study_and_the_rerun_reaches_the_budget(tmp_path):
    CALLS.clear()
    fault = "+method.terms.fault={term: _test_user_fault, kind: data, calls: [0]}"
    args = sweep_args(tmp_path, None, "tune.trials=2", "tune.max_failed_trials=0", fault)
    with pytest.raises(BenchError, match=r"stopped .*image /data/x.jpg is truncated"):
        run_sweep(args)
    study = Sweep.open(args).study
    assert study.trials[0].user_attrs["fail_reason"] == st.USER_ERROR
    assert recovery.failures_against_limit(study) == 0
    sweep_ = run_sweep(args)  # fixed: the same command goes on, though max_failed_trials=0
    assert len(st.tally(sweep_.study).counted) == 2
    replacement = next(t for t in sweep_.study.trials if t.user_attrs.get("replaces") == 0)
    assert replacement.user_attrs["attempt"] == 0  # the same draw: the failure was not the values'


def test_forget_failures_lets_a_refused_study_go_on_without_touching_counted_trials(tmp_path, capsys):
    CALLS.clear()
    fault = "+method.terms.fault={term: _test_user_fault, kind: oom, calls: [6, 7]}"  # 2nd, 3rd trial
    args = sweep_args(tmp_path, None, "tune.trials=3", "tune.max_failed_trials=1", fault)
    with pytest.raises(BenchError, match="make forget-failures STUDY=synthetic/"):
        run_sweep(args)
    with pytest.raises(BenchError, match="max_failed_trials=1"):
        run_sweep(args)  # refused again: the failures stay
    study = Sweep.open(args).study
    before = [(t.number, t.value) for t in st.tally(study).counted]
    where = [f"tune.studies_dir={tmp_path / 'studies'}"]
    code, out, _ = _cli(forget.main, ["failures", study.study_name, *where], capsys)
    assert code == 0 and "2 failed trials set aside" in out and "1 counted trials kept" in out
    study = Sweep.open(args).study
    assert [(t.number, t.value) for t in st.tally(study).counted] == before
    run_sweep(args)
    assert len(st.tally(Sweep.open(args).study).counted) == 3


def test_forget_study_deletes_one_study_and_its_trials_after_a_yes(tmp_path, capsys):
    args = sweep_args(tmp_path, None, "tune.trials=1")
    name = run_sweep(args).name
    other = run_sweep(st.repeat_overrides(args, 1)).name
    where = [f"tune.studies_dir={tmp_path / 'studies'}", f"tune.trials_dir={tmp_path / 'trials'}"]
    code, _, err = _cli(forget.main, ["study", name, *where], capsys)  # no tty, no --yes
    assert code == 2 and "--yes" in err and name in _names(tmp_path)
    code, out, _ = _cli(forget.main, ["study", name, "--yes", *where], capsys)
    assert code == 0 and f"deleted study {name}" in out
    assert _names(tmp_path) == [other] and not (tmp_path / "trials" / name).exists()
    code, _, err = _cli(forget.main, ["study", "no/such", "--yes", *where], capsys)
    assert code == 2 and "no study 'no/such'" in err and other in err


# ---------------------------------------------------------------- case 3: make final with an empty study
def test_final_skips_a_study_without_a_completed_trial_and_finals_the_others(tmp_path, capsys):
    args = sweep_args(tmp_path, None, "tune.trials=1")
    done = run_sweep(args).name
    empty = Sweep.open(st.repeat_overrides(args, 1)).name  # created, no trial run yet
    code, out, err = _cli(final.main, [*args, "tune.final_seeds=1"], capsys)
    assert code == 0, err
    assert f"skipped {empty} (trials1): no completed trial yet" in err
    assert "1 final runs; 1 studies skipped" in out
    assert (tmp_path / "finals" / done / "trials1" / "seed0" / "result.json").is_file()


# ---------------------------------------------------------------- case 4: Ctrl-C
def test_ctrl_c_in_a_sweep_says_rerun_the_same_command(tmp_path):
    from tests.tune.test_sweep import CALLS as FAULT_CALLS

    FAULT_CALLS.clear()
    fault = "+method.terms.fault={term: _test_fault, kind: sigint, calls: [8]}"  # 2nd trial, step 3
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_sweep(sweep_args(tmp_path, None, "tune.trials=3", fault))
    message = str(stopped.value)
    assert "rerun the same command" in message and "resume=true" not in message


CTRL_C = """
import os, signal, sys
from pathlib import Path
from bench.utils.logs import setup_logging
from bench.engine.trainer import Callback, Trainer
from tests.conftest import tiny_config

class CtrlC(Callback):  # the terminal's Ctrl-C reaches the whole process group
    def on_step_end(self, step):
        if step == 2:
            os.killpg(os.getpgrp(), signal.SIGINT)

setup_logging()
cfg = tiny_config(Path(sys.argv[1]), "train.num_workers=2", "train.iterations=40")
try:
    Trainer(cfg, [CtrlC()]).fit()
except KeyboardInterrupt as e:
    print("stopped:", e, file=sys.stderr)
"""


def test_ctrl_c_is_announced_once_with_dataloader_workers(tmp_path):
    """The DataLoader workers inherit the trainer's SIGINT handler; only the trainer may answer."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal gives a command
        timeout=120,
    )
    assert done.stderr.count("Ctrl-C: stopping") == 1, done.stderr
    assert (
        "stopped: interrupted at step" in done.stderr
        and "rerun the same command with resume=true" in done.stderr
    )


# ---------------------------------------------------------------- case 9: an unwritable output folder
def test_an_unwritable_output_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = [*sweep_args(tmp_path), f"tune.trials_dir={blocker / 'trials'}"]
    code, _, err = _cli(sweep.main, args, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and f"cannot write to {blocker / 'trials'}" in err
    assert _names(tmp_path) == []
    code, _, err = _cli(
        teacher.main, [*sweep_args(tmp_path), f"teachers_dir={blocker}/t"], capsys, "teacher_run"
    )
    assert code == 2 and f"cannot write to {blocker}/t" in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_in_a_trial_stops_the_study_naming_it():
    import errno

    from bench.tune.outcome import Then, classify

    o = classify(OSError(errno.ENOSPC, "No space left on device", "/results/trials/x/result.json"))
    assert o.then is Then.STOP_STUDY and o.fail_reason == st.USER_ERROR and not o.counted
    assert o.message.startswith("cannot write to /results/trials/x/result.json: the disk is full")


def test_a_trial_state_is_unchanged_by_the_limit_helpers(tmp_path):
    """failures_against_limit counts crashes, not user errors nor forgotten ones (the fooling case:
    a forgotten study that fails again counts the new failures)."""
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for reason in ("error", "oom", st.USER_ERROR):
        t = study.ask()
        t.set_user_attr("fail_reason", reason)
        study.tell(t, state=TrialState.FAIL)
    assert recovery.failures_against_limit(study) == 2
    recovery.forget_failures(study)
    assert recovery.failures_against_limit(study) == 0
    t = study.ask()
    t.set_user_attr("fail_reason", "error")
    study.tell(t, state=TrialState.FAIL)
    assert recovery.failures_against_limit(study) == 1


# ---------------------------------------------------------------- the smaller items
def test_a_changed_setting_is_refused_with_its_old_and_new_value(tmp_path):
    Sweep.open(sweep_args(tmp_path, None, "tune.trials=2"))
    with pytest.raises(BenchError) as refused:
        Sweep.open(sweep_args(tmp_path, None, "tune.trials=2", "tune.sampler_seed=7"))
    message = str(refused.value)
    assert "sampler_seed: stored 0, now 7" in message and "make forget-study STUDY=synthetic/" in message


def test_status_gives_no_eta_for_a_stopped_study(tmp_path):
    from bench.tune.status import study_status

    study = Sweep.open(sweep_args(tmp_path, None, "tune.trials=3")).study
    t = study.ask()
    t.set_user_attr("wall_seconds", 5.0)
    study.tell(t, 0.5)
    line = study_status(study, grace=60).line()
    assert "1/3 counted" in line and "ETA - (stopped: no worker running; rerun the sweep command" in line
    running = study.ask()  # a worker on it now (its lease is fresh): an ETA at the trials' pace
    hb_attrs = {"owner": {"host": "h", "pid": os.getpid()}}
    for key, value in hb_attrs.items():
        running.set_user_attr(key, value)
    assert "stopped" not in study_status(study, grace=1e9).line()
