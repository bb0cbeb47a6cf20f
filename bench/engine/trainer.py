"""Training of one run: config in, result row out.

The loop composes three pieces with one job each: :meth:`Trainer.train_step` (one optimisation step,
returning its loss terms on the device), :class:`~bench.engine.schedule.Schedule` (which steps log,
validate and checkpoint) and the meters of :mod:`bench.engine.meters` (running losses with the NaN/inf
watch, training time). The device stays busy: the host reads the losses only every
``train.log_interval`` steps, and a non-finite loss is still reported with the exact step and term at
which it first appeared.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bench.config.compose import config_hash, to_dict
from bench.config.schema import RunConfig
from bench.data.fingerprint import fingerprint
from bench.data.pipeline import AugmentedView, TrainBatchSampler, make_loader
from bench.data.splits import build_split
from bench.engine import distributed
from bench.engine.callbacks import Callback, TrackingCallback
from bench.engine.checkpoint import (
    check_output_dir,
    checkpoint_path,
    finished_row,
    load_checkpoint,
    save_checkpoint,
)
from bench.engine.meters import LossMeter, Timing, TrainingClock
from bench.engine.schedule import Schedule
from bench.engine.selection import BestOnVal, last_record, select_interval
from bench.engine.step import PRECISIONS, TrainingStep
from bench.errors import BenchError
from bench.evaluation import Metrics, eval_loader, evaluate
from bench.methods import needs_teacher
from bench.models import build_model, count_parameters
from bench.results import METRICS_UNIT, environment, write_row
from bench.teachers import load_teacher
from bench.tracking import RunInfo, build_logger
from bench.utils.io import save_torch_atomic, sha256_file
from bench.utils.runtime import (
    peak_memory_mb,
    reset_peak_memory,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from bench.utils.units import FRACTION, to_percent

log = logging.getLogger("bench")


class Trainer:
    """Builds everything a run needs from its config; :meth:`fit` trains, evaluates and records."""

    def __init__(
        self,
        cfg: RunConfig,
        callbacks: Sequence[Callback] = (),
        label: str | None = None,
        annotations: dict[str, Any] | None = None,
    ) -> None:
        """``annotations`` are stored in the result row under ``tuning`` (e.g. the study of a final run)."""
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.annotations = annotations
        self.label = label or f"{cfg.method.name}/{cfg.student.name}/seed{cfg.seed}"
        self.out = Path(cfg.output_dir)
        self.hash = config_hash(cfg)
        self._tracking_started = False
        self.dist = distributed.context()  # torchrun: this process's rank (see bench.engine.distributed)
        self.device = distributed.setup(self.dist, resolve_device(cfg.device), cfg.train.batch_size)
        self.dtype = PRECISIONS[cfg.train.precision]
        seed_everything(cfg.seed, cfg.train.deterministic)

        ds = cfg.dataset
        self.train_set = build_split(ds, cfg.train.split)
        self.eval_set = build_split(ds, cfg.eval.split)
        # what this run reads, by content (bench.data.fingerprint): recorded in its row and a teacher
        self.data = {cfg.train.split: fingerprint(self.train_set), cfg.eval.split: fingerprint(self.eval_set)}
        self._eval_loader: DataLoader | None = None
        self.student = build_model(cfg.student, ds.num_classes, role="student").to(self.device)
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.student.to(memory_format=self.memory_format)
        self.train_student = distributed.wrap(self.student, self.dist, self.device)
        if cfg.train.compile:  # the training forward only; evaluation runs the plain module
            self.train_student = torch.compile(self.train_student)

        self.teacher_info: dict[str, Any] | None = None
        teacher_model = None
        if needs_teacher(cfg):
            teacher_model, path, digest = load_teacher(cfg, self.device)
            teacher_model.to(memory_format=self.memory_format)
            self.teacher_info = {"path": str(path), "sha256": digest}
        input_size = tuple(cfg.train.crop_size or _sample_size(self.train_set))
        self.training_step = TrainingStep.build(
            cfg,
            self.student,
            teacher_model,
            self.device,
            input_size,
            self.train_student,
            self.dist,
            teacher_checkpoint=(self.teacher_info["path"], self.teacher_info["sha256"])
            if self.teacher_info
            else None,
        )
        step = self.training_step  # what the step updates, under the names the checkpoints use
        self.objective, self.teacher = step.objective, step.teacher
        self.optimizer, self.scheduler, self.scaler = step.optimizer, step.scheduler, step.scaler

        interval = select_interval(cfg)  # eval.select=best_on_val: the best of periodic validations
        self.selection = BestOnVal(str(cfg.eval.split), interval) if interval else None
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.timing = Timing()

    @property
    def train_seconds(self) -> float:
        """Seconds spent training so far (across resumes; validation and checkpoints left out)."""
        return self.timing.train_seconds

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "config_hash": self.hash,
            "step": self.step,
            "student": self.student.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "history": self.history,
            "metrics_unit": METRICS_UNIT,  # of history's val_miou
            "timing": [self.timing.train_seconds, self.timing.step_seconds, self.timing.timed_steps],
            "selection": self.selection.state_dict() if self.selection else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.student.load_state_dict(state["student"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        unit = state.get("metrics_unit", FRACTION)  # checkpoints before the unit was recorded: fractions
        self.history = [
            {**h, "val_miou": to_percent(h["val_miou"], unit)} if "val_miou" in h else h
            for h in state["history"]
        ]
        self.timing = Timing(*state["timing"])
        if self.selection and state.get("selection"):
            self.selection.load_state_dict(state["selection"])

    # ------------------------------------------------------------------ run
    def fit(self) -> dict[str, Any]:
        """Train (or resume), evaluate on ``eval.split`` and write the result row; returns the row."""
        cfg = self.cfg
        if cfg.resume:
            row = finished_row(self.out, self.hash)
            if row is not None:
                log.info("%s: finished run with the same config found, reusing it", self.out)
                return row
            state = load_checkpoint(self.out, self.hash)
            if state is not None:
                self.load_state_dict(state)
                log.info("%s: resuming at step %d", self.out, self.step)
        else:
            check_output_dir(self.out, resume=False)
        self._memory_kind = reset_peak_memory(self.device)
        self._start_tracking()

        wall_start = time.perf_counter()
        row = None
        try:
            with _graceful_interrupt() as interrupted:
                self._train_loop(interrupted)
            try:
                metrics = self.validate()
            except BenchError as e:  # training is saved: only the evaluation needs redoing
                raise type(e)(
                    f"{e}\nThe evaluation failed after training; the trained model is saved in "
                    f"{checkpoint_path(self.out)}. Fix the cause and rerun the same command with "
                    "resume=true: it evaluates the saved model without training again."
                ) from None
            weights = self.student.state_dict()
            if self.selection is not None:  # the reported scores and model.pt: the best validation's
                self.selection.offer(self.step, metrics, self.student)
                metrics, weights = self.selection.best(), self.selection.weights
            row = self._result_row(metrics, time.perf_counter() - wall_start)
            if not self.dist.is_main:
                return row
            save_torch_atomic(self.out / "model.pt", {"state_dict": weights, "config_hash": self.hash})
            return write_row(self.out, row)
        finally:
            for cb in self.callbacks:
                cb.on_fit_end(self.step, row)

    def _start_tracking(self) -> None:
        """Add the experiment logger of ``cfg.logger`` (if any; rank 0 only) to the callbacks, once."""
        cfg = self.cfg
        if self._tracking_started or not self.dist.is_main:
            return
        self._tracking_started = True
        teacher = cfg.teacher.name if self.teacher is not None else "none"
        tags = {"dataset": cfg.dataset.name, "student": cfg.student.name, "teacher": teacher}
        tags |= {"method": cfg.method.name, "seed": str(cfg.seed), "split": cfg.eval.split}
        group = cfg.logger.group or "/".join(tags[k] for k in ("dataset", "student", "teacher", "method"))
        logger = build_logger(cfg.logger, RunInfo(self.label, group, self.out, tags))
        if logger is not None:
            self.callbacks.append(TrackingCallback(logger, to_dict(cfg), cfg.eval.split))

    def validate(self) -> Metrics:
        if self._eval_loader is None:
            self._eval_loader = eval_loader(
                self.eval_set, self.cfg.eval, self.cfg.train.num_workers, self.device.type == "cuda"
            )
        return evaluate(
            self.student,
            self._eval_loader,
            self.cfg.eval,
            self.cfg.dataset.num_classes,
            self.cfg.dataset.ignore_index,
            self.device,
            self.dtype,
        )

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        t, ds = self.cfg.train, self.cfg.dataset
        view = AugmentedView(self.train_set, t.augment, t.crop_size, ds.ignore_index)
        sampler = TrainBatchSampler(len(view), t.batch_size, self.cfg.seed, t.iterations, self.step)
        sampler = distributed.ShardedBatchSampler(sampler, self.dist)
        loader = make_loader(view, sampler, num_workers=t.num_workers, pin_memory=self.device.type == "cuda")
        for images, labels in loader:
            images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            yield images, labels.to(self.device, non_blocking=True)

    def _train_loop(self, interrupted: threading.Event) -> None:
        """Steps until ``train.iterations``, doing what the schedule says after each; on Ctrl-C
        (``interrupted``) it checkpoints and stops."""
        schedule = Schedule.of(self.cfg.train)
        losses = LossMeter(self.objective.part_names, self.device, self.step)
        clock = TrainingClock(self.timing, self.step)
        self.student.train()
        bar = tqdm(
            total=self.cfg.train.iterations,
            initial=self.step,
            disable=not self.cfg.progress or not self.dist.is_main,
            desc=self.label,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        try:
            for images, labels in self._batches():
                losses.add(self.train_step(images, labels, self.step), self.step)
                self.step += 1
                bar.update(1)
                for cb in self.callbacks:
                    cb.on_step_end(self.step)
                due = schedule.at(self.step)
                if due.log:
                    means = losses.means(self.step, self.dist)  # the only host sync of the loop
                    clock.lap(self.step, due.final)
                    entry = self._log(means)
                    bar.set_postfix(loss=f"{entry['loss']:.4f}", refresh=False)
                select = self.selection is not None and self.step % self.selection.interval == 0
                if due.validate or (select and not due.final):  # the final one is fit()'s evaluation
                    with clock.paused():
                        self._intermediate_validation(due.validate, select)
                if due.checkpoint and self.dist.is_main:
                    with clock.paused():
                        save_checkpoint(self.out, self.state_dict())
                if interrupted.is_set():
                    if self.dist.is_main:
                        save_checkpoint(self.out, self.state_dict())
                    how = "the same command" if self.cfg.resume else "the same command with resume=true"
                    raise KeyboardInterrupt(
                        f"interrupted at step {self.step}; checkpoint saved in {self.out}: "
                        f"rerun {how} to continue"
                    )
        except BaseException:
            clock.stop()  # a stopped run (pruned, diverged) still reports its cost
            raise
        finally:
            bar.close()

    def _log(self, means: list[float]) -> dict[str, Any]:
        """Record the interval's mean loss per term (and their sum) and tell the callbacks."""
        entry = {
            "step": self.step,
            "lr": self.scheduler.get_last_lr()[0],
            "loss": sum(means),
            **dict(zip(self.objective.part_names, means, strict=True)),
        }
        self.history.append(entry)
        for cb in self.callbacks:
            cb.on_log(self.step, entry)
        return entry

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        """One optimisation step on a batch (:class:`~bench.engine.step.TrainingStep`); returns its
        loss terms (``objective.part_names``) on the device, without waiting for it."""
        return self.training_step(images, labels, step)

    def _intermediate_validation(self, callbacks: bool = True, select: bool = False) -> None:
        """A validation on ``eval.split``: for the callbacks (``train.val_interval``) and/or for
        ``eval.select=best_on_val`` (``select``)."""
        metrics = self.validate()
        self.history.append({"step": self.step, "val_miou": 100 * metrics.miou})
        log.debug("step %d: %s mIoU %.2f", self.step, self.cfg.eval.split, 100 * metrics.miou)
        if select:
            self.selection.offer(self.step, metrics, self.student)
        if callbacks:
            for cb in self.callbacks:
                cb.on_validation(self.step, metrics)

    def _result_row(self, metrics: Metrics, wall: float) -> dict[str, Any]:
        cfg = self.cfg
        total, active = count_parameters(
            self.student, tuple(cfg.train.crop_size or _sample_size(self.eval_set))
        )
        step_s = self.timing.step_time
        kind = self._memory_kind
        peak = peak_memory_mb(self.device, kind)
        names = getattr(self.eval_set, "class_names", None)
        weights = cfg.student.encoder_weights
        return {
            "dataset": cfg.dataset.name,
            "student": cfg.student.name,
            "teacher": cfg.teacher.name if self.teacher is not None else None,
            "method": cfg.method.name,
            "seed": cfg.seed,
            "split": cfg.eval.split,
            "train_split": cfg.train.split,
            "metrics": {**metrics.in_percent(), "class_names": names},
            "metrics_unit": METRICS_UNIT,  # miou 41.23 (%), as printed, tabled and drawn
            # training and evaluation autocast dtype (fp32: none), and which checkpoint's scores these are
            "precision": str(cfg.train.precision),
            "selection": self.selection.record() if self.selection else last_record(),
            "config_hash": self.hash,
            "config": to_dict(cfg),
            "teacher_checkpoint": self.teacher_info,
            "data": self.data,
            "model": {
                "params_total": total,
                "params_active": active,
                "encoder_weights": weights,
                "encoder_weights_sha256": sha256_file(weights) if weights not in (None, "imagenet") else None,
            },
            "cost": {
                "wall_seconds": wall,
                "train_seconds": self.train_seconds,
                "iterations": cfg.train.iterations,
                "step_time_ms": 1000 * step_s,
                "images_per_s": cfg.train.batch_size / step_s if step_s > 0 else None,
                "peak_mem_mb": peak,
                "peak_mem_kind": kind,
            },
            "environment": environment(self.device),
            "tuning": self.annotations,
            "history": self.history,
        }


def _sample_size(dataset: Any) -> tuple[int, int]:
    """(H, W) of the first sample, the training size when there is no crop."""
    return tuple(dataset[0][1].shape[-2:])


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[threading.Event]:
    """The first Ctrl-C asks the loop to checkpoint and stop at the next step; a second one aborts."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        # DataLoader workers forked while this handler is set get the terminal's Ctrl-C too: the
        # training process alone answers (and says so once); it stops its workers itself.
        if os.getpid() != owner:
            return
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        log.warning("Ctrl-C: stopping after this step and saving a checkpoint (press again to abort)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def train_run(cfg: RunConfig, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train, evaluate and record one run; returns its result row."""
    return Trainer(cfg, callbacks).fit()
