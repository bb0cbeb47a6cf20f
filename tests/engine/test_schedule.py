"""The training loop's schedule and meters, without training: which steps log, validate and
checkpoint; the running loss means and the NaN/inf watch; the training clock's warm-up rule."""

import math
import time

import pytest
import torch

from bench.config.compose import load_config
from bench.engine.distributed import context
from bench.engine.meters import LossMeter, Timing, TrainingClock
from bench.engine.schedule import Schedule
from bench.errors import NonFiniteLossError


def _steps(schedule: Schedule, what: str, start: int = 0) -> list[int]:
    return [s for s in range(start + 1, schedule.iterations + 1) if getattr(schedule.at(s), what)]


def test_intervals_and_the_last_step():
    s = Schedule(iterations=10, log_interval=4, val_interval=3, checkpoint_interval=5)
    assert _steps(s, "log") == [4, 8, 10]  # the last step always logs ...
    assert _steps(s, "checkpoint") == [5, 10]  # ... and saves (an evaluation crash loses no training)
    assert _steps(s, "validate") == [3, 6, 9]  # the final evaluation is the result, not a validation
    assert _steps(s, "final") == [10]


def test_a_last_step_on_an_interval_is_not_validated_twice():
    s = Schedule(iterations=12, log_interval=6, val_interval=6, checkpoint_interval=6)
    assert _steps(s, "validate") == [6]
    assert _steps(s, "log") == _steps(s, "checkpoint") == [6, 12]


def test_zero_intervals_mean_only_at_the_end():
    s = Schedule(iterations=7, log_interval=1)
    assert _steps(s, "log") == list(range(1, 8))
    assert _steps(s, "validate") == []
    assert _steps(s, "checkpoint") == [7]


def test_a_resumed_run_keeps_the_same_points():
    """The schedule depends on the step only: resuming at step 4 validates where the full run did."""
    s = Schedule(iterations=12, log_interval=5, val_interval=4, checkpoint_interval=4)
    for what in ("log", "validate", "checkpoint"):
        assert _steps(s, what, start=4) == [x for x in _steps(s, what) if x > 4]


def test_built_from_the_run_config():
    cfg = load_config(
        ["train.iterations=9", "train.log_interval=3", "train.val_interval=2", "train.checkpoint_interval=4"]
    )
    assert Schedule.of(cfg.train) == Schedule(9, 3, 2, 4)


def test_loss_means_cover_the_steps_since_the_last_read():
    meter = LossMeter(["ce", "kd"], torch.device("cpu"), step=10)  # resumed at step 10
    for step, parts in enumerate([[1.0, 2.0], [3.0, 4.0]], start=10):
        meter.add(torch.tensor(parts), step)
    assert meter.means(12, context()) == [2.0, 3.0]
    meter.add(torch.tensor([5.0, 0.5]), 12)
    assert meter.means(13, context()) == [5.0, 0.5]  # the sums restart after each read


def test_the_first_non_finite_term_and_step_are_named():
    meter = LossMeter(["ce", "kd", "aux"], torch.device("cpu"), step=0)
    meter.add(torch.tensor([1.0, 1.0, 1.0]), 0)
    meter.add(torch.tensor([1.0, 1.0, math.inf]), 1)  # aux first, at step 2 (1-based)
    meter.add(torch.tensor([math.nan, 1.0, math.nan]), 2)  # ce later: aux is still the first
    with pytest.raises(NonFiniteLossError) as err:
        meter.means(3, context())
    assert (err.value.step, err.value.term) == (2, "aux")


def test_the_clock_leaves_out_pauses_and_the_first_interval():
    timing = Timing(train_seconds=1.0, step_seconds=0.5, timed_steps=5)  # resumed from a checkpoint
    clock = TrainingClock(timing, step=5)
    time.sleep(0.02)
    clock.lap(7, final=False)  # warm-up after the (re)start: costs, but times no steps
    assert timing.timed_steps == 5 and timing.step_seconds == 0.5 and timing.train_seconds >= 1.02
    with clock.paused():
        time.sleep(0.2)
    clock.lap(9, final=False)
    assert timing.timed_steps == 7 and timing.step_seconds - 0.5 < 0.1  # the pause is left out
    before = timing.train_seconds
    time.sleep(0.02)
    clock.stop()  # a stopped run still reports its cost
    assert timing.train_seconds >= before + 0.02


def test_a_run_of_one_interval_is_timed_all_the_same():
    timing = Timing()
    TrainingClock(timing, step=0).lap(4, final=True)
    assert timing.timed_steps == 4 and timing.step_time == timing.step_seconds / 4 > 0
    assert Timing().step_time == 0.0
