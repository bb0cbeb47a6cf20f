"""The journal storage under faults: a cut last record, a full disk, a read-only folder, make status.

Before: ENOSPC mid-append left a partial last line and a raw OSError traceback; the next sweep
appended after it and from then on every study of the file failed with JSONDecodeError; a journal cut
by 40 bytes did the same; ``make status`` reported it as normal.
"""

import errno
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.config.compose import load_config
from bench.sweep import main as sweep_main
from bench.tune import journal
from bench.tune import study as st
from bench.tune.journal import StorageError, inspect

from ..conftest import sweep_args

ROOT = Path(__file__).resolve().parents[2]


def _tune(tmp_path):
    return load_config([f"tune.studies_dir={tmp_path / 'studies'}", "output_dir=unused"]).tune


def _journal_with_trials(tmp_path, n=3):
    tune = _tune(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(tune), direction="maximize")
    for i in range(n):
        study.add_trial(optuna.trial.create_trial(value=0.1 * i, state=TrialState.COMPLETE))
    return tune, Path(st.storage_url(tune))


def _load(tune):
    return optuna.load_study(study_name="s", storage=st.open_storage(tune))


def test_a_journal_cut_by_40_bytes_is_backed_up_cut_and_reported(tmp_path, caplog):
    tune, path = _journal_with_trials(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-40])  # a copy cut short: the last record (the third trial's state) is partial
    damage = inspect(path)
    assert damage is not None and damage.tail and damage.size == len(whole) - 40
    with caplog.at_level(logging.WARNING, logger="bench"):
        study = _load(tune)
    backups = list(path.parent.glob("optuna.journal.damaged-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == whole[:-40]  # kept as it was
    assert str(path) in caplog.text and str(backups[0]) in caplog.text and "partial record" in caplog.text
    assert path.read_bytes() == whole[: damage.good] and inspect(path) is None
    # the next writes land on a clean line: the file loads in a fresh process's storage
    study.add_trial(optuna.trial.create_trial(value=0.9, state=TrialState.COMPLETE))
    values = [t.value for t in _load(tune).trials if t.state == TrialState.COMPLETE]
    assert values[:2] == [0.0, 0.1] and values[-1] == 0.9


def test_damage_before_the_last_line_is_refused_naming_the_line(tmp_path):
    tune, path = _journal_with_trials(tmp_path, n=5)
    lines = path.read_bytes().splitlines(keepends=True)
    # what the old code left: a partial record with the next append glued to it
    lines[2] = lines[2][:10] + lines[3]
    path.write_bytes(b"".join(lines[:3] + lines[4:]))
    before = path.read_bytes()
    with pytest.raises(StorageError, match=r"damaged at line 3 .*restore it from a backup"):
        st.open_storage(tune)
    assert path.read_bytes() == before  # never cut where records would be lost


def _enospc_after(monkeypatch, predicate):
    """os.write in the journal backend writes half a matching record, then fails with ENOSPC."""
    real = os.write
    hits = []

    def write(fd, data):
        if predicate(bytes(data)):
            hits.append(bytes(data))
            real(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(journal.os, "write", write)
    return hits


def test_a_full_disk_is_one_line_and_leaves_no_partial_record(tmp_path, monkeypatch):
    tune, path = _journal_with_trials(tmp_path)
    study = _load(tune)
    before = path.read_bytes()
    hits = _enospc_after(monkeypatch, lambda data: True)
    with pytest.raises(StorageError) as err:
        study.add_trial(optuna.trial.create_trial(value=0.5, state=TrialState.COMPLETE))
    assert hits  # half the record reached the disk, then the disk was full
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "No space left on device (ENOSPC)" in message
    assert "nothing counted was lost" in message
    assert path.read_bytes() == before and inspect(path) is None
    monkeypatch.undo()
    assert [t.value for t in _load(tune).trials] == pytest.approx([0.0, 0.1, 0.2])


def test_a_read_only_folder_is_one_line_naming_the_path(tmp_path, monkeypatch):
    tune, path = _journal_with_trials(tmp_path)
    study = _load(tune)
    real = os.open

    def read_only(file, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real(file, flags, *args, **kwargs)

    monkeypatch.setattr(journal.os, "open", read_only)
    with pytest.raises(
        StorageError, match=r"Read-only file system \(EROFS\).*make the folder writable"
    ) as err:
        study.set_user_attr("x", 1)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_a_full_disk_mid_sweep_stops_with_one_line_and_the_next_sweep_completes(
    tmp_path, monkeypatch, capsys
):
    args = sweep_args(
        tmp_path, None, "tune.trials=2", "tune.heartbeat_interval=0.2", "tune.heartbeat_grace=1"
    )
    from bench.cli import run_cli

    run_cli(sweep_main, "run", "", argv=args)
    path = tmp_path / "studies" / "optuna.journal"
    # the disk fills up when the third trial's result is told (its state record: COMPLETE = 1)
    _enospc_after(monkeypatch, lambda data: b'"op_code":6' in data and b'"state":1' in data)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_cli(sweep_main, "run", "", argv=[*args, "tune.trials=4"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "ENOSPC" in errors[0]
    assert "Traceback" not in err
    assert inspect(path) is None
    tune = load_config(args).tune
    name = next(iter(optuna.get_all_study_names(st.open_storage(tune))))
    study = optuna.load_study(study_name=name, storage=st.open_storage(tune))
    assert len(st.tally(study).counted) == 2  # nothing counted was lost; the third stays RUNNING
    assert len(st.tally(study).running) == 1
    monkeypatch.undo()
    time.sleep(1.2)  # past the heartbeat grace: the trial in flight goes stale and is replaced
    run_cli(sweep_main, "run", "", argv=[*args, "tune.trials=4"])
    study = optuna.load_study(study_name=name, storage=st.open_storage(tune))
    assert len(st.tally(study).counted) == 4 and not st.tally(study).running
    assert [t.user_attrs.get("fail_reason") for t in study.trials if t.state == TrialState.FAIL] == ["stale"]


def _status(tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "bench.status", f"tune.studies_dir={tmp_path / 'studies'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def test_status_reports_a_damaged_journal_and_leaves_it_as_it_is(tmp_path):
    _, path = _journal_with_trials(tmp_path)
    healthy = _status(tmp_path)
    assert healthy.returncode == 0 and "DAMAGED" not in healthy.stdout
    path.write_bytes(path.read_bytes()[:-40])
    cut = path.read_bytes()
    result = _status(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"DAMAGED: study journal {path} ends in a partial record" in result.stdout
    assert "s: 2/0 counted" in result.stdout  # the studies as the complete records hold them
    assert path.read_bytes() == cut and not list(path.parent.glob("*.damaged-*"))
    json.loads(cut.splitlines()[0])  # untouched, readable records
