"""Trials and workers: compose each trial's config, train on the tuning split, score on the hold-out.

A trial's config is the study's composed config (the user's overrides) plus the sampled values, the
tuning splits (``train.split=tune_train``, ``eval.split=tune_holdout``) and the per-trial schedule,
built with Hydra's compose API exactly like a command-line run. The official validation split is
never touched here.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from bench.config import RunConfig
from bench.config.budget import Budget
from bench.config.overrides import Overrides
from bench.engine.trainer import Callback, Trainer
from bench.errors import BenchError, ConfigError
from bench.evaluation import Metrics
from bench.methods import needs_teacher
from bench.teacher_split import check_tuning_teacher_exists
from bench.tune import heartbeat as hb
from bench.tune import study as st
from bench.tune.compute_record import COMPUTE, trial_compute
from bench.tune.journal import StorageError
from bench.tune.outcome import LeaseLostError, Then, classify
from bench.tune.recovery import failures_against_limit
from bench.tune.sampling import SlotSampler
from bench.tune.space import SearchSpace, load_space
from bench.tune.status import duration, study_status
from bench.tune.trial_config import study_config, trial_config, trial_values
from bench.utils.signals import signals_deferred
from bench.utils.units import PERCENT, from_percent
from bench.workers.launch import launch
from bench.workers.multi_gpu import check_gpus_per_trial, trial_trainer
from bench.workers.processes import Worker
from bench.workers.work import Work

log = logging.getLogger("bench")


# Seconds between looks at the study while the rest of its budget runs in other workers' trials: the
# waiting worker exits (or replaces a failed trial) this soon after they end. (5 s left a 2-worker
# sweep of 8 short trials idle for a seventh of its wall time; a look is a few storage reads.)
WAIT_POLL = 0.5


def trial_overrides(cfg: RunConfig, study_name: str, number: int, params: dict[str, Any]) -> Overrides:
    """Everything a trial sets on top of the study's own overrides, as Hydra overrides."""
    return Overrides().with_(trial_values(cfg, study_name, number, params))


class LeaseCallback(Callback):
    """Stops a trial that another worker failed as stale (this worker was silent past the grace)."""

    def __init__(self, lease: hb.Lease) -> None:
        self.lease = lease

    def on_step_end(self, step: int) -> None:
        if self.lease.lost.is_set():
            raise LeaseLostError(f"failed as stale by another worker at step {step}")


class TrialProgress(Callback):
    """One line per ``train.log_interval`` steps of a running trial: trial, step, loss, it/s, ETA.

    Trials train without a progress bar (several workers share a terminal); on real data a trial
    takes hours, so its worker reports where it is at the loop's own logging points (no extra sync).
    """

    def __init__(self, method: str, number: int, iterations: int) -> None:
        self.prefix = f"[{method}] trial {number:>3}"
        self.iterations = iterations
        self._last: tuple[int, float] = (0, time.perf_counter())

    def on_log(self, step: int, entry: dict[str, float]) -> None:
        now = time.perf_counter()
        rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
        self._last = (step, now)
        if step >= self.iterations:
            return  # the finished-trial line follows
        eta = duration((self.iterations - step) / rate) if rate > 0 else "-"
        say(
            f"{self.prefix} step {step}/{self.iterations} loss {entry['loss']:.4f} "
            f"{rate:.2f} it/s | trial ETA {eta}"
        )


class PruningCallback(Callback):
    """Reports intermediate hold-out mIoU to Optuna (in the unit of the study's values, ``unit``) and
    stops the trial when the pruner says so."""

    def __init__(self, trial: Trial, unit: str = PERCENT) -> None:
        self.trial = trial
        self.unit = unit

    def on_validation(self, step: int, metrics: Metrics) -> None:
        percent = 100 * metrics.miou
        self.trial.report(from_percent(percent, self.unit), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (hold-out mIoU {percent:.2f})")


def make_sampler(cfg: RunConfig, seed: int) -> optuna.samplers.BaseSampler:
    """tune.sampler is typed (config.schema.Sampler): composition refused other values."""
    if cfg.tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    """tune.pruner is typed (config.schema.Pruner): composition refused other values."""
    t = cfg.tune
    if t.pruner == "none":
        return optuna.pruners.NopPruner()
    if t.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=t.pruner_startup_trials, n_warmup_steps=t.pruner_warmup_steps
        )
    return optuna.pruners.SuccessiveHalvingPruner()


def check_tune_config(cfg: RunConfig) -> None:
    t = cfg.tune  # tune.budget is typed (config.schema.BudgetKind): composition refused other values
    if (t.budget == "trials" and t.trials < 1) or (t.budget == "time" and t.seconds <= 0):
        raise ConfigError("the budget must be positive (tune.trials ≥ 1 or tune.seconds > 0)")
    if t.workers < 1:
        raise ConfigError("tune.workers must be at least 1")
    if cfg.eval.select != "last":  # a trial scored on the hold-out it picked its checkpoint by
        raise ConfigError(
            f"eval.select={cfg.eval.select} picks each trial's checkpoint on the hold-out it is scored on; "
            "sweeps report the last checkpoint: drop eval.select (finals may use it; the report flags them)"
        )
    check_gpus_per_trial(cfg)
    if not 0 < t.heartbeat_interval < t.heartbeat_grace:
        raise ConfigError(
            f"tune.heartbeat_interval={t.heartbeat_interval:g} must be positive and below "
            f"tune.heartbeat_grace={t.heartbeat_grace:g} (a few intervals, plus the hosts' clock skew)"
        )
    make_sampler(cfg, 0)
    make_pruner(cfg)


def check_sweep_needs(cfg: RunConfig) -> None:
    """What every trial needs (data, teacher, weights, writable folders), before the study is opened."""
    from bench.preflight import check_run_needs

    folders = [cfg.tune.trials_dir] + ([] if cfg.tune.storage else [cfg.tune.studies_dir])
    check_run_needs(cfg, ("tune_train", "tune_holdout"), folders)
    if needs_teacher(cfg):  # the trials' own teacher, trained without the hold-out they are scored on
        from bench.preflight import check_teacher_data

        check_teacher_data(cfg, check_tuning_teacher_exists(cfg))


@dataclass
class Sweep:
    """One study and how to run its trials (rebuilt in every worker process)."""

    overrides: list[str]
    cfg: RunConfig
    space: SearchSpace
    study: optuna.Study

    @classmethod
    def open(cls, overrides: Sequence[str], preflight: bool = False) -> Sweep:
        """The study of ``overrides``, created or resumed; ``preflight``: first check what its trials
        need (:func:`check_sweep_needs`), so a user's mistake leaves the study untouched."""
        cfg = study_config(overrides)  # composed once per process: its trials start from this composition
        check_tune_config(cfg)
        space = load_space(cfg)
        if preflight:
            check_sweep_needs(cfg)
        study = st.open_study(cfg, space, st.open_storage(cfg.tune), list(overrides))
        study.pruner = make_pruner(cfg)
        study.sampler = SlotSampler(lambda seed: make_sampler(cfg, seed), cfg.tune.sampler_seed)
        return cls(list(overrides), cfg, space, study)

    @property
    def name(self) -> str:
        return self.study.study_name

    def run_worker(self, wait: bool = True) -> None:
        """Claim and run trials until the budget is met.

        Before each claim the worker fails stale trials (their workers died, on any host). When the
        rest of the budget is in other workers' running trials it waits for them: if one of them dies
        its trial goes stale after ``tune.heartbeat_grace`` and this worker replaces it. With
        ``wait=False`` it returns instead (a worker of several studies moves on to the next one).
        """
        tune = self.cfg.tune
        started, trained = time.perf_counter(), 0  # this worker's pace, for the ETA
        while True:
            hb.fail_stale_trials(self.study, tune.heartbeat_grace)
            st.enqueue_missing_replacements(self.study)  # stale trials, or a worker died before enqueuing
            if st.budget_met(self.study, tune):
                break
            if failures_against_limit(self.study) > tune.max_failed_trials:
                raise BenchError(
                    f"study '{self.name}': more than tune.max_failed_trials={tune.max_failed_trials} trials "
                    "crashed (their tracebacks are above). Fix the cause, then "
                    f"`make forget-failures STUDY={self.name}` and rerun the same command"
                )
            if not st.budget_left(self.study, tune, time.time()):
                if not wait:
                    return
                time.sleep(WAIT_POLL)  # the rest runs in other workers' trials
                continue
            trial = self.study.ask(self.space.distributions)
            hb.claim(self.study, trial)  # a kill before this leaves a trial that goes stale by its start
            if st.over_budget(self.study, tune, trial.number):
                self._finish(trial, TrialState.FAIL, {"fail_reason": "over_budget"})
                continue  # a trial ahead may still fail; budget_met / budget_left decide
            self.run_trial(trial)
            trained += 1
            self._progress(trial.number, (time.perf_counter() - started) / trained)

    def run_trial(self, trial: Trial) -> None:
        """Train one trial and tell Optuna how it ended (:func:`bench.tune.outcome.classify`; see
        :mod:`bench.tune.study` for counting)."""
        attempt = TrialAttempt()
        lease = hb.Lease(self.study, trial._trial_id, self.cfg.tune.heartbeat_interval).start()
        try:
            error, outcome = None, classify(self._train(trial, lease, attempt))
        except StorageError:  # nothing can be recorded: the trial stays RUNNING, goes stale, is replaced
            raise
        except (Exception, KeyboardInterrupt) as e:
            lost = st.connection_lost(e, self.cfg.tune)
            if lost is not None:  # e.g. trial.report while the database is unreachable
                raise lost from None
            error, outcome = e, classify(e)
            if outcome.fail_reason == "error":
                log.error("trial %d crashed:\n%s", trial.number, traceback.format_exc(limit=6))
        finally:
            lease.stop()
        if outcome.then is Then.DROP:
            log.warning("trial %d %s; dropping it", trial.number, outcome.message)
        else:
            code = {"code": st.trial_code(st.code_version())}  # the version that ran it (cached per process)
            self._finish(trial, outcome.state, outcome.user_attrs() | attempt.cost() | code, outcome.value)
        if outcome.then is not Then.NEXT or not self.cfg.tune.keep_trial_checkpoints:
            attempt.discard()
        if outcome.then is Then.STOP_STUDY:
            raise BenchError(f"study '{self.name}' stopped (every trial would stop here): {outcome.message}")
        if outcome.then is Then.RERAISE:
            # the trial's checkpoint is gone and it reruns (not counted): the study goes on from there
            error.args = (
                f"interrupted in trial {trial.number} (not counted; it reruns with the same values): "
                "rerun the same command to continue the study",
            )
            raise error

    def _train(self, trial: Trial, lease: hb.Lease, attempt: TrialAttempt) -> dict[str, Any]:
        """Train the trial on this worker's device; returns its result row (what it raises is the
        trial's outcome). The one place where a trial trains."""
        cfg = trial_config(self.overrides, trial_values(self.cfg, self.name, trial.number, trial.params))
        progress = TrialProgress(self.cfg.method.name, trial.number, cfg.train.iterations)
        callbacks = [LeaseCallback(lease), PruningCallback(trial, st.value_unit(self.study)), progress]
        # what it runs on, stored before it trains: a running trial's elapsed time counts ×devices
        attempt.compute = trial_compute(cfg)
        trial.set_user_attr(COMPUTE, attempt.compute)
        attempt.trainer = trial_trainer(cfg, callbacks, f"trial {trial.number}")  # N GPUs: torchrun
        return attempt.trainer.fit()

    def _finish(
        self, trial: Trial, state: TrialState, attrs: dict[str, Any], value: float | None = None
    ) -> None:
        try:
            with signals_deferred():  # a SIGTERM now must not leave the trial half-told
                for key, val in attrs.items():
                    trial.set_user_attr(key, val)
                if state == TrialState.COMPLETE:  # value: hold-out mIoU in percent
                    self.study.tell(trial, st.study_value(self.study, value))
                else:
                    self.study.tell(trial, state=state)
                    st.enqueue_replacement(self.study, trial.number)  # same slot; the default stays counted
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning("trial %d was failed as stale by another worker; its result is dropped", trial.number)

    def _progress(self, number: int, per_trial: float) -> None:
        """One line for the trial this worker just finished, with the study's state; the ETA assumes
        every worker takes ``per_trial`` seconds a trial, as this one has so far."""
        tune = self.cfg.tune
        t = st.tally(self.study)
        last = next(tr for tr in self.study.get_trials(deepcopy=False) if tr.number == number)
        done = len(t.counted)
        try:  # hold-out mIoU in percent, the unit of every table
            best_value, last_value = st.in_percent(self.study, [self.study.best_value, last.value])
            best = f"{best_value:.2f} (#{self.study.best_trial.number})"
        except ValueError:
            best, last_value = "-", st.in_percent(self.study, [last.value])[0]
        value = (
            f"{last_value:.2f}"
            if last_value is not None
            else (st.fail_reason(last) or last.state.name.lower())
        )
        if tune.budget == "trials":
            target = f"{done}/{tune.trials}"
            eta = (tune.trials - done) * per_trial / max(tune.workers, 1)
        else:
            target = f"{t.seconds:.0f}/{tune.seconds:.0f}s"
            eta = max(tune.seconds - t.seconds, 0) / max(tune.workers, 1)
        # the docs' "trial k" is slot k; a replaced trial has a later Optuna number than its slot
        slot = st.slots(self.study.get_trials(deepcopy=False))[last.number][0]
        number = f"{last.number:>3}" + (f" (slot {slot})" if slot != last.number else "")
        head = f"[{self.cfg.method.name}] trial {number} {last.state.name:<8} {value:>9}"
        say(f"{head} | best {best} | {target} | ETA {duration(eta)}")


@dataclass
class TrialAttempt:
    """What one trial's training leaves for the runner to record and clean up, however it trained."""

    start: float = field(default_factory=time.perf_counter)
    trainer: Trainer | None = None  # set once the trial's config is built and its trainer set up
    compute: dict[str, Any] = field(default_factory=dict)  # bench.tune.compute_record.trial_compute

    def cost(self) -> dict[str, float]:
        """Training and wall seconds, device-seconds (what a time budget counts) and, where the
        trainer timed steps, the trial's step time (a pruned trial's too)."""
        train = self.trainer.train_seconds if self.trainer else 0.0
        out = {
            "train_seconds": train,
            "wall_seconds": time.perf_counter() - self.start,
            "device_seconds": train * self.compute.get("devices", 1),
        }
        timing = getattr(self.trainer, "timing", None)  # a multi-GPU trial's comes with its row
        if timing is not None and timing.timed_steps:
            out["step_time_ms"] = 1000 * timing.step_time
        return out

    def discard(self) -> None:
        """Remove the trial's checkpoints and model (its result row stays)."""
        if self.trainer is not None:
            discard_checkpoints(self.trainer.out)


def say(line: str) -> None:
    """Print one progress line in one write: several workers share stdout (and PYTHONUNBUFFERED would
    make ``print`` write the newline separately, so lines of two workers could run together)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def discard_checkpoints(out: Path) -> None:
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    (out / "model.pt").unlink(missing_ok=True)


def work_on(studies: Sequence[Sequence[str]]) -> None:
    """One worker over several studies (the repeats of a method): claim trials from the first study
    with budget left, then the next, so no worker idles while any study has trials to start; then
    wait for the others' running trials (replacing any that go stale)."""
    sweeps = [Sweep.open(overrides) for overrides in studies]
    try:
        for sweep in sweeps:
            sweep.run_worker(wait=False)
        for sweep in sweeps:
            sweep.run_worker()
    except Exception as e:  # a database that went away: one line, not a driver traceback
        lost = st.connection_lost(e, sweeps[0].cfg.tune)
        if lost is None or lost is e:
            raise
        raise lost from None


def run_sweep(overrides: Sequence[str]) -> Sweep:
    """Tune one study to its budget with ``tune.workers`` processes; resumes an existing study."""
    return run_sweeps([overrides])[0]


def run_sweeps(studies: Sequence[Sequence[str]], standby: Sequence[Worker] = ()) -> list[Sweep]:
    """Tune several studies (the repeats of a method, :func:`bench.tune.study.repeat_overrides`)
    concurrently with one set of ``tune.workers`` workers (the first study's): worker i starts on
    study i mod S and moves on when no trial of it is left to start. Resumes existing studies.

    ``standby``: worker processes already started (:func:`bench.workers.processes.standby_workers`),
    used for local workers 1, 2, …; those not needed are dismissed before the trials start."""
    sweeps = [Sweep.open(overrides, preflight=True) for overrides in studies]
    first = sweeps[0]
    for sweep in sweeps:
        tune = sweep.cfg.tune
        stale = hb.fail_stale_trials(sweep.study, tune.heartbeat_grace)
        if stale:
            log.info("%s: trials %s of dead workers failed (not counted), to be replaced", sweep.name, stale)
        log.info(
            "study %s on %s: %s, %d counted trials so far",
            sweep.name,
            st.storage_url_for_log(tune),
            Budget.of(tune).label,
            len(st.tally(sweep.study).counted),
        )
    try:
        launch(
            Work(
                cfg=first.cfg,
                name=first.name,
                rotations=lambda n: rotations(sweeps, n),
                work_on=work_on,
                on_stopped=lambda pids: _fail_trials_of(sweeps, pids, Path(first.cfg.tune.trials_dir)),
                status=lambda: {
                    s.name: study_status(s.study, first.cfg.tune.heartbeat_grace).line() for s in sweeps
                },
            ),
            standby,
        )
    finally:
        for sweep in sweeps:
            try:
                st.record_realised_budget(sweep.study)
            except Exception as e:  # the storage is gone: keep the error that says so
                if st.connection_lost(e, sweep.cfg.tune) is None:
                    raise
    return sweeps


def rotations(sweeps: Sequence[Sweep], workers: int) -> list[list[list[str]]]:
    """Each worker's studies (as overrides) in the order it works on them: worker i starts on
    study i mod S, so the studies start evenly spread over the workers."""
    n = len(sweeps)
    return [[list(sweeps[(i + k) % n].overrides) for k in range(n)] for i in range(workers)]


def _fail_trials_of(sweeps: Sequence[Sweep], pids: set[int], trials_dir: Path) -> None:
    """Worker processes ``pids`` were stopped: fail their running trials (not counted) and remove
    those trials' checkpoints."""
    for sweep in sweeps:
        for number in hb.fail_trials_of(sweep.study, pids, "interrupted"):
            discard_checkpoints(trials_dir / sweep.name / f"trial_{number:04d}")
