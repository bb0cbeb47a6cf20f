"""What the training loop measures: the losses (running means and the NaN/inf watch, kept on the
device) and the training time (between log points, leaving out validation and checkpoints)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from bench.engine import distributed
from bench.errors import NonFiniteLossError


class LossMeter:
    """Running sums of the loss terms and the first step at which each became NaN/inf.

    :meth:`add` stays on the device; :meth:`means`, called at logging steps, is the loop's only host
    read, and still names the exact step and term at which a non-finite loss first appeared.
    """

    def __init__(self, names: Sequence[str], device: torch.device, step: int) -> None:
        self.names = list(names)
        self._sum = torch.zeros(len(self.names), device=device)
        self._first_bad = torch.full((len(self.names),), -1, dtype=torch.long, device=device)
        self._since = step

    def add(self, parts: torch.Tensor, step: int) -> None:
        """The loss terms of step ``step`` (0-based: the step the objective saw)."""
        self._sum += parts
        self._first_bad = torch.where((~torch.isfinite(parts)) & (self._first_bad < 0), step, self._first_bad)

    def means(self, step: int, dist: distributed.DistContext) -> list[float]:
        """Each term's mean (over ranks) since the last call, now that ``step`` steps are done.

        Raises :class:`~bench.errors.NonFiniteLossError` for the earliest non-finite term instead.
        """
        bad = self._first_bad.cpu()
        if (bad >= 0).any():
            i = int(torch.where(bad >= 0, bad, bad.max() + 1).argmin())
            raise NonFiniteLossError(int(bad[i]) + 1, self.names[i])
        total = distributed.mean_across_ranks(self._sum, dist)
        means = (total / (step - self._since)).tolist()
        self._sum.zero_()
        self._since = step
        return means


@dataclass
class Timing:
    """A run's training time, carried across resumes in its checkpoints."""

    train_seconds: float = 0.0  # every step, warm-up included (what a trial costs)
    step_seconds: float = 0.0  # the timed log intervals: all but the first after each (re)start
    timed_steps: int = 0

    @property
    def step_time(self) -> float:
        """Seconds per timed step (0 when none was timed)."""
        return self.step_seconds / max(self.timed_steps, 1)


class TrainingClock:
    """Adds the seconds between log points to a :class:`Timing`, leaving out :meth:`paused` blocks.

    The first interval after a (re)start is warm-up (data workers, allocator, autotuning): it counts
    in ``train_seconds`` but times steps only when it is also the last one.
    """

    def __init__(self, timing: Timing, step: int) -> None:
        self.timing = timing
        self._start = time.perf_counter()
        self._excluded = 0.0
        self._since = step
        self._warm_up = True

    def lap(self, step: int, final: bool) -> None:
        """At a log point, ``step`` steps done."""
        elapsed = self._elapsed()
        self.timing.train_seconds += elapsed
        if not self._warm_up or final:
            self.timing.step_seconds += elapsed
            self.timing.timed_steps += step - self._since
        self._since, self._warm_up = step, False

    def stop(self) -> None:
        """A run stopped between log points (pruned, diverged, crashed) still reports its cost."""
        self.timing.train_seconds += self._elapsed()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._excluded += time.perf_counter() - start

    def _elapsed(self) -> float:
        now = time.perf_counter()
        elapsed = now - self._start - self._excluded
        self._start, self._excluded = now, 0.0
        return elapsed
