"""Where every study of a storage stands: ``make status`` (``python -m bench.status``).

Read from the storage alone, so it works from any machine that reaches it, while workers run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from bench.tune import heartbeat as hb
from bench.tune import study as st
from bench.tune.compute_record import describe, devices, study_compute


@dataclass
class StudyStatus:
    name: str
    counted: int
    target: str  # "7/20" or "1200/3600s"
    running: int
    stale: int  # running trials whose lease has expired (failed at the next worker's claim)
    failed: int  # uncounted failures (crashes, OOM, stale, interrupted)
    best: float | None  # hold-out mIoU in percent
    best_trial: int | None
    eta_seconds: float | None  # at the pace of the counted trials, with the workers now running
    stopped: bool = False  # budget left and no live worker: no ETA, the sweep must be rerun
    compute: dict = field(default_factory=dict)  # bench.tune.compute_record.study_compute

    def line(self) -> str:
        best = f"{self.best:.2f} (#{self.best_trial})" if self.best is not None else "-"  # mIoU %
        eta = "-" if self.eta_seconds is None else duration(self.eta_seconds) if self.eta_seconds else "done"
        if self.stopped:
            eta = "- (stopped: no worker running; rerun the sweep command to go on)"
        return (
            f"{self.name}: {self.target} counted, {self.running} running, {self.stale} stale, "
            f"{self.failed} failed | best {best} | ETA {eta} | {describe(self.compute)}"
        )


def study_status(study: optuna.Study, grace: float, now: float | None = None) -> StudyStatus:
    now = time.time() if now is None else now
    t = st.tally(study)
    stale = sum(1 for r in t.running if hb.stale_reason(r, grace, now) is not None)
    live = len(t.running) - stale
    # the largest budget a sweep asked of the study (its name and settings leave the amount out)
    budget = study.user_attrs.get(st.REQUESTED) or {}
    complete = [c for c in t.counted if c.state == TrialState.COMPLETE]
    best = max(complete, key=lambda c: c.value) if complete else None
    walls = [c.user_attrs.get("wall_seconds", 0.0) for c in t.counted]
    pace = sum(walls) / len(walls) if walls else None
    eta: float | None
    if budget.get("kind") == "time":  # device-seconds (bench.tune.compute_record)
        target = f"{t.seconds:.0f}/{budget['seconds']:.0f} device-s"
        left = max(budget["seconds"] - t.seconds, 0.0)
        # the live trials spend device-seconds at their devices' rate
        rate = sum(devices(r) for r in t.running if hb.stale_reason(r, grace, now) is None)
        eta = 0.0 if left == 0 else (left / max(rate, 1))
    else:
        total = budget.get("trials") or 0
        target = f"{len(t.counted)}/{total}"
        left = max(total - len(t.counted), 0)
        eta = 0.0 if left == 0 else (None if pace is None else left * pace / max(live, 1))
    if live == 0 and left > 0:  # nobody works on it: an ETA at some pace would be a promise nobody keeps
        eta = None
    return StudyStatus(
        study.study_name,
        len(t.counted),
        target,
        len(t.running),
        stale,
        t.uncounted_failures,
        st.in_percent(study, [best.value])[0] if best else None,
        best.number if best else None,
        eta,
        stopped=live == 0 and left > 0,
        compute=study_compute(t.counted),
    )


def storage_status(storage: optuna.storages.BaseStorage, grace: float) -> list[StudyStatus]:
    out = []
    for summary in sorted(optuna.get_all_study_summaries(storage), key=lambda s: s.study_name):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out.append(study_status(study, grace))
    return out


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
