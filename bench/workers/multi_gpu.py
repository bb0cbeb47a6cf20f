"""Trials on several processes: with ``tune.gpus_per_trial = N > 1`` each trial trains under torchrun.

The sweep worker stays the trial's owner: its lease, pruning and progress callbacks run in the
worker, while the training runs in N processes that torchrun starts on this machine
(``torch.distributed.run --standalone --nproc-per-node=N``), exactly like ``torchrun -m
bench.train``: DistributedDataParallel, synchronised BatchNorm, the seeded global batches split over
the ranks (:mod:`bench.engine.distributed`; ``train.batch_size`` is the global batch). So a trial on
N processes sees the batches of a one-process trial and scores the same up to float reordering.

Rank 0 relays the training loop's hooks (step ends, log entries, validations) to the worker through
an events file, and the worker replays them, in order, on the trial's callbacks. A pruning decision
or a lost lease therefore acts as in a one-process trial: the worker stops torchrun (SIGTERM; it
stops its ranks) and raises. An error in a rank comes back as the same exception class (NaN loss,
out of memory, ``method.memory_limit_mb``, a config error), so the trial fails for the same reason.
Nothing is left running: torchrun and the ranks die with their parent (``PR_SET_PDEATHSIG``).

GPUs: a trial on ``device=cuda:K`` runs on GPUs K … K+N−1 (a worker's set, see
:func:`bench.utils.devices.worker_slots`); ``device=auto`` or ``cuda`` on GPUs 0 … N−1; each rank sees
only its own GPU set (``CUDA_VISIBLE_DEVICES``) and drives ``cuda:LOCAL_RANK``. Without CUDA
(``device=cpu``, or ``auto`` on a machine without GPUs) the ranks are CPU processes on gloo: the
tests run it that way.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

USAGE = """usage: python -m bench.workers.multi_gpu {agent NPROC CONFIG EVENTS | rank CONFIG EVENTS}

Internal: a sweep worker starts it for a trial with tune.gpus_per_trial > 1 (agent: torchrun on this
machine; rank: one of its processes). Run a sweep instead: make sweep ARGS="tune.gpus_per_trial=2"."""

from bench.cli import answer_help

answer_help(__name__, USAGE)  # before torch: --help answers at once

import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import bench
from bench import errors
from bench.config import RunConfig
from bench.config.compose import to_dict, validate
from bench.engine import distributed
from bench.engine.callbacks import Callback
from bench.engine.trainer import Trainer
from bench.errors import BenchError, ConfigError, MemoryLimitError, NonFiniteLossError
from bench.evaluation import Metrics
from bench.results import RESULT_FILE, read_row
from bench.utils.signals import Interrupted, die_with_parent, raise_on_sigterm

log = logging.getLogger("bench")

POLL_SECONDS = 0.2  # how often the worker reads the ranks' events
STOP_TIMEOUT = 60.0  # seconds torchrun gets to stop its ranks before SIGKILL
MODULE = "bench.workers.multi_gpu"  # (not __name__: it is __main__ in torchrun's agent)
_LAUNCH_ENV = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
)


class TrialProcessError(RuntimeError):
    """A rank of a multi-process trial failed with an error that is not one of the project's own."""


def check_gpus_per_trial(cfg: RunConfig) -> None:
    """The study-level checks of ``tune.gpus_per_trial`` (the GPU count is checked where the trials run)."""
    n = cfg.tune.gpus_per_trial
    if n < 1:
        raise ConfigError(f"tune.gpus_per_trial={n} must be ≥ 1")
    if n > 1 and cfg.train.batch_size % n:
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} (a trial's global batch) must be divisible by "
            f"tune.gpus_per_trial={n}: each of the trial's processes takes an equal slice of every batch"
        )
    if n > 1 and cfg.launcher.name == "local":
        trial_gpus(cfg.device, n)  # a Slurm job checks on its own node


def trial_gpus(device: str, n: int) -> list[int] | None:
    """The visible GPUs a trial on ``n`` processes runs on (``device=cuda:K``: K … K+n−1); None on CPU."""
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return None
    if not device.startswith("cuda") and device != "auto":
        raise ConfigError(
            f"device='{device}': a trial on tune.gpus_per_trial={n} processes runs on cuda or cpu"
        )
    if not torch.cuda.is_available():
        raise ConfigError(f"device='{device}' but no CUDA device is visible; use device=auto or device=cpu")
    first = int(device.split(":", 1)[1]) if ":" in device else 0
    visible = torch.cuda.device_count()
    if first + n > visible:
        raise ConfigError(
            f"device='{device}' with tune.gpus_per_trial={n} needs GPUs {first} … {first + n - 1}, but "
            f"{visible} are visible: lower tune.gpus_per_trial or tune.workers, or make more GPUs "
            "visible (CUDA_VISIBLE_DEVICES; launcher.gpus_per_node on Slurm)"
        )
    return list(range(first, first + n))


def trial_trainer(cfg: RunConfig, callbacks: Sequence[Callback], label: str) -> Trainer | TorchrunTrial:
    """The trial's trainer: in this process, or on ``tune.gpus_per_trial`` processes under torchrun."""
    if cfg.tune.gpus_per_trial == 1:
        return Trainer(cfg, callbacks=callbacks, label=label)
    return TorchrunTrial(cfg, callbacks, label)


class TorchrunTrial:
    """One trial's training on ``tune.gpus_per_trial`` processes; the interface of :class:`Trainer`
    that the trial runner uses (``fit``, ``out``, ``train_seconds``)."""

    def __init__(self, cfg: RunConfig, callbacks: Sequence[Callback], label: str) -> None:
        self.cfg, self.callbacks, self.label = cfg, list(callbacks), label
        self.out = Path(cfg.output_dir)
        self.nproc = cfg.tune.gpus_per_trial
        self.gpus = trial_gpus(cfg.device, self.nproc)
        self.train_seconds = 0.0
        self._errors: list[dict[str, Any]] = []
        self.workdir: str | None = None
        self.step = 0  # the last step rank 0 reported

    def fit(self) -> dict[str, Any]:
        """Train on the processes, replaying rank 0's hooks here; returns the result row."""
        with tempfile.TemporaryDirectory(prefix="segkd-trial-") as tmp:
            self.workdir = tmp  # the ranks' command lines name it (tests look for leftovers)
            config, events = Path(tmp) / "config.json", Path(tmp) / "events.jsonl"
            child = replace(self.cfg, device="cuda" if self.gpus is not None else "cpu")
            config.write_text(json.dumps(to_dict(child)))
            events.touch()
            command = [sys.executable, "-m", MODULE, "agent", str(self.nproc), str(config), str(events)]
            agent = subprocess.Popen(command, env=self._env())
            reader = _EventReader(events)
            try:
                while True:
                    finished = agent.poll() is not None
                    for event in reader.read():
                        self._replay(event)  # a callback may raise: pruned, lease lost
                    if finished:
                        break
                    time.sleep(POLL_SECONDS)
            except BaseException:
                _stop(agent)
                for event in reader.read():  # the stopped ranks' last word: their training time
                    self._note(event)
                self._fit_end(None)
                raise
            row = self._outcome(agent.returncode)
        self._fit_end(row)
        return row

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_ENV}
        env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // self.nproc))
        root = str(Path(bench.__file__).resolve().parents[1])  # the ranks import this very package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        if self.gpus is not None:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
            env["CUDA_VISIBLE_DEVICES"] = ",".join(ids[i] for i in self.gpus)
        return env

    def _replay(self, event: dict[str, Any]) -> None:
        self._note(event)
        hook, step = event["hook"], event.get("step", 0)
        for cb in self.callbacks:
            if hook == "step_end":
                cb.on_step_end(step)
            elif hook == "log":
                cb.on_log(step, event["entry"])
            elif hook == "validation":
                cb.on_validation(step, _metrics(event["metrics"]))

    def _note(self, event: dict[str, Any]) -> None:
        if event["hook"] == "step_end":
            self.step = event["step"]
        if "train_seconds" in event:
            self.train_seconds = max(self.train_seconds, event["train_seconds"])
        if event["hook"] == "error":
            self._errors.append(event)

    def _outcome(self, returncode: int) -> dict[str, Any]:
        """The result row, or the exception of the rank that failed first (a stopped rank last)."""
        if self._errors:
            first = sorted(self._errors, key=lambda e: e["type"] in ("Interrupted", "KeyboardInterrupt"))[0]
            raise _exception(first)
        path = self.out / RESULT_FILE
        if returncode != 0 or not path.exists():
            raise TrialProcessError(
                f"the trial's {self.nproc} processes (torchrun) exited with status {returncode} "
                f"without {'an error report' if returncode else path}; see the worker's output above"
            )
        row = read_row(path)
        self.train_seconds = row["cost"]["train_seconds"]
        return row

    def _fit_end(self, row: dict[str, Any] | None) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(self.step, row)


def _stop(agent: subprocess.Popen) -> None:
    """Stop torchrun (which stops its ranks), at last by SIGKILL (the ranks then get SIGTERM)."""
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


class _EventReader:
    """The complete JSON lines appended to the events file since the last read."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 (open for the trial's life, closed with the reader)
        self.partial = b""

    def read(self) -> list[dict[str, Any]]:
        data = self.partial + self.file.read()
        *lines, self.partial = data.split(b"\n")
        return [json.loads(line) for line in lines if line]

    def __del__(self) -> None:
        self.file.close()


def _metrics(d: dict[str, Any]) -> Metrics:
    nan = lambda xs: [math.nan if x is None else x for x in xs]  # noqa: E731
    return Metrics(d["miou"], d["aacc"], d["macc"], nan(d["iou"]), nan(d["acc"]))


def _exception(event: dict[str, Any]) -> BaseException:
    kind, message = event["type"], event["message"]
    if kind == "NonFiniteLossError":
        return NonFiniteLossError(event["step"], event["term"])
    if kind == "MemoryLimitError":
        return MemoryLimitError(message, event["term"])
    if kind == "OutOfMemoryError":
        return torch.OutOfMemoryError(message)
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, BenchError):
        return cls(message)
    return TrialProcessError(f"rank {event['rank']}: {kind}: {message}")


# ---------------------------------------------------------------------------------------- processes
class _Relay(Callback):
    """Rank 0's hooks, appended to the events file as JSON lines (one ``write`` each)."""

    def __init__(self, path: str, rank: int) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.rank = rank
        self.trainer: Trainer | None = None

    def emit(self, **event: Any) -> None:
        os.write(self.fd, (json.dumps(event) + "\n").encode())

    def on_step_end(self, step: int) -> None:
        self.emit(hook="step_end", step=step)

    def on_log(self, step: int, entry: dict[str, float]) -> None:
        seconds = self.trainer.train_seconds if self.trainer else 0.0
        self.emit(hook="log", step=step, entry=entry, train_seconds=seconds)

    def on_validation(self, step: int, metrics: Metrics) -> None:
        self.emit(hook="validation", step=step, metrics=metrics.as_dict())

    def error(self, e: BaseException) -> None:
        self.emit(
            hook="error",
            rank=self.rank,
            type=type(e).__name__,
            message=str(e),
            step=getattr(e, "step", None),
            term=getattr(e, "term", None),
            train_seconds=self.trainer.train_seconds if self.trainer else 0.0,
        )


def _rank_main(config: str, events: str) -> int:
    """One rank: train the trial's config; rank 0 relays its hooks, every rank its error."""
    from bench.utils.logs import setup_logging

    setup_logging()
    raise_on_sigterm()
    die_with_parent()  # torchrun killed: stop too
    ctx = distributed.context()
    relay = _Relay(events, ctx.rank)
    try:
        cfg = validate(json.loads(Path(config).read_text()))
        relay.trainer = Trainer(cfg, callbacks=[relay] if ctx.is_main else [], label=f"rank {ctx.rank}")
        relay.trainer.fit()
    except (KeyboardInterrupt, Exception) as e:
        relay.error(e)
        if isinstance(e, KeyboardInterrupt):
            return 128 + getattr(e, "signum", signal.SIGINT)
        if not isinstance(e, BenchError | torch.OutOfMemoryError):
            log.error("rank %d:\n%s", ctx.rank, traceback.format_exc(limit=8))
        return 1
    finally:
        distributed.teardown(ctx)
    return 0


def _agent_main(nproc: str, config: str, events: str) -> int:
    """torchrun on this machine, dying with the sweep worker; quiet about ranks that reported."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    die_with_parent()
    logging.getLogger("torch.distributed.elastic").setLevel(logging.WARNING)
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", MODULE, "rank", config, events]
    )
    try:
        run(args)
    except ChildFailedError:
        return 1  # the failed rank wrote its error (and traceback) already
    except SignalException as e:
        return 128 + int(e.sigval)
    return 0


if __name__ == "__main__":
    role, *rest = sys.argv[1:] or [""]
    if role not in ("agent", "rank"):
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(_agent_main(*rest) if role == "agent" else _rank_main(*rest))
    except Interrupted as e:
        sys.exit(128 + e.signum)
