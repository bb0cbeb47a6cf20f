"""Finals: the best configuration of each study, retrained over seeds on the full training split.

Each final run trains with the protocol's full schedule on ``train`` and is evaluated once, at its
end, on the official validation split — the only place that split is used. Its result row carries
the study's realised budget and tuning curve under ``tuning``, so the report needs nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from bench.config import RunConfig
from bench.config.budget import Budget
from bench.config.compose import config_hash, load_config
from bench.config.overrides import Overrides
from bench.config.schema import TuneConfig
from bench.engine.checkpoint import finished_row
from bench.engine.trainer import Trainer
from bench.errors import ConfigError, NoCompletedTrialError
from bench.methods import needs_teacher
from bench.results import RESULT_FILE
from bench.teachers import read_teacher_meta, teacher_path
from bench.tune import study as st
from bench.tune.compute_record import study_compute
from bench.tune.finals_digest import record_digest
from bench.utils.devices import torch_threads, worker_slots
from bench.utils.secrets import mask_url
from bench.workers.processes import Worker, run_workers

log = logging.getLogger("bench")


def select_studies(cfg: RunConfig, storage: optuna.storages.BaseStorage, method: str | None) -> list[str]:
    """Studies of the dataset × student × teacher group of ``cfg`` of its budget kind (all methods or one)."""
    kind = cfg.tune.budget
    names = []
    for name in optuna.get_all_study_names(storage):
        parsed = st.StudyName.parse(name)  # every repeat is finalised
        if parsed is None or (parsed.dataset, parsed.student, parsed.kind) != (
            cfg.dataset.name,
            cfg.student.name,
            kind,
        ):
            continue
        if parsed.teacher not in (cfg.teacher.name, "none") or (method and parsed.method != method):
            continue
        names.append(name)
    if not names:
        what = f"method '{method}'" if method else "any method"
        raise ConfigError(
            f"no study of {what} for {cfg.dataset.name}/{cfg.student.name} (teacher {cfg.teacher.name}, "
            f"{kind} budget) in {st.storage_url_for_log(cfg.tune)}; run `make sweep` first (same budget kind)"
        )
    return sorted(names)


def study_summary(study: optuna.Study, tune: TuneConfig) -> dict[str, Any]:
    """What a final run records about its study at the budget of ``tune``: identity, settings, prefix.

    Everything comes from the study's prefix at that budget (:func:`bench.tune.study.prefix`), so
    a 20-trial comparison read from a study topped up to 30 trials is the 20-trial study's. Scores
    are in percent, whatever the unit of the study's values.
    """
    budget = Budget.of(tune)
    trials = st.prefix(study, budget)
    best = st.best_trial(study, trials)
    settings = dict(study.user_attrs["settings"])
    default = st.literature_default(study)
    complete = [t.value if t.state == TrialState.COMPLETE else None for t in trials]
    best_value, default_value = st.in_percent(
        study, [best.value, default.value if default is not None else None]
    )
    return {
        "study": study.study_name,
        "settings_hash": st.settings_hash(settings),
        "settings": settings,
        "repeat": settings.get("repeat", 0),
        "budget": budget.as_dict(),
        "best_trial": best.number,
        "best_slot": [t.number for t in trials].index(best.number),  # the prefix is slots 0, 1, …
        "best_params": best.params,
        "holdout_miou": best_value,
        "literature_default_counted": default is not None and default.number in {t.number for t in trials},
        "literature_default_miou": default_value,
        "trials": len(trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "tune_seconds": sum(st.spent_seconds(t) for t in trials),  # device-seconds
        "compute": study_compute(trials),  # what the prefix's trials ran on (bench.tune.compute_record)
        "seconds_tolerance": st.seconds_tolerance(study),
        "uncounted_failures": st.tally(study).uncounted_failures,
        "budget_met": st.prefix_met(trials, budget),
        "best_so_far": st.in_percent(study, st.best_so_far(trials)),
        # every counted trial's hold-out score in slot order (None: pruned or diverged)
        "holdout_values": st.in_percent(study, complete),
        # the code versions that ran the counted trials (several only under tune.allow_mixed_code)
        "code_versions": st.trial_versions(trials),
    }


def teacher_miou(cfg: RunConfig) -> float | None:
    """The teacher's own validation mIoU in percent, as its checkpoint records it (None without a teacher)."""
    if not needs_teacher(cfg):
        return None
    metrics = read_teacher_meta(teacher_path(cfg)).get("metrics") or {}
    return metrics.get("miou")


@dataclass
class FinalJob:
    """One final run: a study's best configuration with one seed."""

    study: str
    seed: int
    overrides: list[str]  # the run's full config overrides
    annotations: dict[str, Any]  # the study's summary, stored in the row under ``tuning``
    output_dir: Path
    config_hash: str

    def finished(self) -> dict[str, Any] | None:
        """The run's result row when it has finished (an error when another config's row is there)."""
        return finished_row(self.output_dir, self.config_hash)


def final_jobs(
    overrides: list[str],
    method: str | None = None,
    at_requested: bool = False,
    skipped: list[str] | None = None,
) -> list[FinalJob]:
    """The final runs of every matching study, seeds 0..S-1 each (see :func:`run_finals`).

    A study without a completed trial in its budget's prefix is an error, or, given ``skipped``, a
    line there (study, budget and why) while the other studies' runs are returned.
    """
    cfg = load_config(overrides)
    storage = st.open_storage(cfg.tune)
    jobs = []
    for name in select_studies(cfg, storage, method):
        study = optuna.load_study(study_name=name, storage=storage)
        tune = cfg.tune
        if at_requested:
            tune = Budget.from_dict(st.requested_budget(study)).on(tune)
        try:
            summary = study_summary(study, tune)
        except NoCompletedTrialError:
            if skipped is None:
                raise
            t = st.tally(study)
            skipped.append(
                f"{name} ({Budget.of(tune).label}): no completed trial yet ({len(t.counted)} counted, "
                f"{len(t.running)} running, {t.uncounted_failures} failed); finish its sweep, then rerun"
            )
            continue
        summary["storage"] = mask_url(st.storage_url(cfg.tune))
        if not summary["budget_met"]:
            log.warning(
                "study %s has not met its budget (%d counted trials); its comparison will be flagged",
                name,
                summary["trials"],
            )
        best = Overrides().with_(summary["best_params"])
        for seed in range(cfg.tune.final_seeds):
            run_overrides = [
                *study.user_attrs["overrides"],
                *overrides,
                f"tune.trials={tune.trials}",  # the comparison's budget (per study with at_requested)
                f"tune.seconds={tune.seconds}",
                f"method={summary['settings']['method']}",
                *best,
                f"seed={seed}",
                "train.split=train",
                "eval.split=val",
                f"output_dir={Path(tune.finals_dir) / name / Budget.of(tune).label / f'seed{seed}'}",
                "resume=true",
            ]
            run_cfg = load_config(run_overrides)
            if seed == 0:
                summary["teacher_miou"] = teacher_miou(run_cfg)
            jobs.append(
                FinalJob(name, seed, run_overrides, summary, Path(run_cfg.output_dir), config_hash(run_cfg))
            )
    return jobs


def run_final(job: FinalJob, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Train one final run (or reuse its finished result) and return its row."""
    row = job.finished()
    if row is None:
        cfg = load_config([*job.overrides, *extra])
        label = f"final {cfg.method.name} seed{job.seed}"
        row = Trainer(cfg, annotations=job.annotations, label=label).fit()
        # the digest the report checks the row against (a reused row keeps the one of its training)
        study = optuna.load_study(study_name=job.study, storage=st.open_storage(cfg.tune))
        record_digest(study, job.output_dir / RESULT_FILE, Budget.of(cfg.tune).label, job.seed)
        log.info("%s seed %d: val mIoU %.2f", job.study, job.seed, row["metrics"]["miou"])
    return row


def run_finals(
    overrides: list[str],
    method: str | None = None,
    at_requested: bool = False,
    standby: Sequence[Worker] = (),
) -> list[dict[str, Any]]:
    """Retrain the best configuration of every matching study with seeds 0..S-1; returns the rows.

    The comparison's budget is ``tune.trials`` / ``tune.seconds`` of ``overrides``, or, with
    ``at_requested``, each study's own: the largest budget its sweeps asked for. With ``tune.workers``
    = W > 1 the runs still to train are shared among W local workers, this process and W − 1 spawned
    ones (CPU threads and GPUs split by :func:`~bench.utils.devices.worker_slots`, one GPU per run
    whatever ``tune.gpus_per_trial``); a finished run is reused. ``standby``: worker processes already
    started (:func:`bench.workers.processes.standby_workers`), used before any is spawned.
    """
    cfg = load_config(overrides)
    jobs = final_jobs(overrides, method, at_requested)
    check_final_needs(jobs)
    return train_final_jobs(jobs, cfg, standby)


def check_final_needs(jobs: Sequence[FinalJob]) -> None:
    """What the runs still to train need (data, teacher, weights, a writable folder), one study at a
    time, before any of them trains (:mod:`bench.preflight`)."""
    from bench.preflight import check_run_needs

    seen: set[str] = set()
    for job in jobs:
        if job.study in seen or job.finished() is not None:
            continue
        seen.add(job.study)
        cfg = load_config(job.overrides)
        check_run_needs(cfg, ("train", "val"), (cfg.output_dir,))


def train_final_jobs(jobs: Sequence[FinalJob], cfg: RunConfig, standby: Sequence[Worker] = ()) -> list[dict]:
    """Train (or reuse) ``jobs`` on ``cfg.tune.workers`` local workers; returns their rows in order."""
    todo = [job for job in jobs if job.finished() is None]
    workers = min(cfg.tune.workers, len(todo))
    if workers > 1:
        log.info(
            "final runs: %d to train on %d workers (this process and %d more)",
            len(todo),
            workers,
            workers - 1,
        )
        gpus = torch.cuda.device_count() if cfg.device in ("auto", "cuda") else 0
        slots = worker_slots(workers, gpus, cfg.tune.workers_per_gpu)  # a final is one process, one GPU
        # job j goes to worker j mod W: a study's seeds are spread over the workers, so the loads match
        # no progress bars: several would run into one another on the terminal (each run logs its mIoU)
        args = [
            (todo[i::workers], [*slot.overrides, "progress=false"], slot.threads)
            for i, slot in enumerate(slots)
        ]
        # checkpoints stay (resume=true): nothing to mark when stopped
        run_workers(_final_worker, args, on_stopped=lambda pids: None, standby=standby)
    return [run_final(job) for job in jobs]


def _final_worker(jobs: list[FinalJob], extra: list[str], threads: int) -> None:
    from bench.utils.logs import setup_logging

    setup_logging()
    with torch_threads(threads):
        for job in jobs:
            run_final(job, extra)
