"""Studies: storage, names, the settings every method must share, and the realised budget.

Budget accounting: what counts toward a study's budget, trial slots, and budgets as prefixes.

- A trial *counts* toward the budget when it finished as COMPLETE or PRUNED, or FAILED because its
  sampled configuration diverged (NaN/inf loss): those are outcomes of the search.
- Failures that say nothing about the configuration — out of memory, a crash, Ctrl-C, a worker that
  died (stale), a trial discarded for exceeding the budget — do not count; the sweep replaces them,
  up to ``tune.max_failed_trials``.
- ``budget=trials``: exactly ``tune.trials`` counted trials. Workers claim a trial, then check its
  rank among counted-or-running trials (trial numbers are assigned atomically by the storage); a
  trial ranked beyond the budget is discarded before it trains, so concurrent workers — on one
  machine or many — never overshoot.
- ``budget=time``: new trials start while the counted trials' device-seconds plus the running
  trials' elapsed device-seconds stay below ``tune.seconds``; the overshoot is at most one trial per
  worker and the realised device-seconds are recorded. Device-seconds are training seconds × the
  devices a trial held (its GPUs, or its worker's CPU threads; :mod:`bench.tune.compute_record`).

Trial slots (common random numbers). "Trial k" of a study is its k-th *slot*, not its Optuna trial
number: slot 0 is the literature default; every trial Optuna creates fresh takes the next slot (its
slot is the number of non-replacement trials before it, fixed the moment the storage numbers it);
a trial that fails without counting is replaced by a trial enqueued for the *same* slot
(user attributes ``replaces``, ``slot``, ``attempt``), so a replaced trial shifts no other slot.
The sampler of every trial is seeded from (``tune.sampler_seed``, slot, attempt)
(:class:`bench.tune.sampling.SlotSampler`), whatever the number of workers, processes or hosts;
two live trials never share a slot, so concurrent asks never share a seed. A replacement keeps the
attempt (re-runs the same sampled configuration) when its predecessor was interrupted or its worker
died, and takes the next attempt (a new draw) after failures that may come from the configuration
(out of memory, an invalid value, an exception). With a trial budget, slots ≥ ``tune.trials`` are
discarded before they train, so the counted trials are exactly slots 0 … trials−1; a later, larger
budget gives those slots back (:func:`enqueue_discarded_slots`) and continues with the next ones.

Budgets are prefixes: a study's name and settings hash leave the budget's amount out, and the
comparison at budget N reads slots 0 … N−1 (:func:`prefix`), so one study serves every budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.config.budget import Budget
from bench.config.schema import TuneConfig
from bench.errors import ConfigError, NoCompletedTrialError
from bench.tune.compute_record import COMPUTE, devices, study_compute

COUNTED_FAILURES = frozenset({"nonfinite"})
# A user's mistake (data, weights, a checkpoint, a full disk): stops the study; never counted against
# tune.max_failed_trials (see bench.tune.recovery).
USER_ERROR = "user_error"
# Failures caused outside the sampled configuration: the replacement re-runs the same configuration.
EXTERNAL_FAILURES = frozenset({"interrupted", "stale", USER_ERROR})
DISCARDED = "over_budget"  # never trained: not counted, not replaced

SLOT, REPLACES, ATTEMPT = "slot", "replaces", "attempt"


REQUESTED = "requested_budget"


def record_requested_budget(study: optuna.Study, tune: TuneConfig) -> dict[str, Any]:
    """Store the largest budget a sweep has asked of this study: what `make final` uses by default.

    The study's name leaves the amount out (budgets are prefixes), so without it a plain
    ``make final`` would not know whether ``TRIALS=30`` topped the study up.
    """
    asked = Budget.of(tune)
    stored = study.user_attrs.get(REQUESTED)
    if stored is None or Budget.from_dict(stored).kind != asked.kind or Budget.from_dict(stored) < asked:
        study.set_user_attr(REQUESTED, asked.as_dict())
        return asked.as_dict()
    return stored


def requested_budget(study: optuna.Study) -> dict[str, Any]:
    """The budget recorded by :func:`record_requested_budget` (the largest a sweep asked for)."""
    stored = study.user_attrs.get(REQUESTED)
    if stored is None:
        raise ConfigError(
            f"study '{study.study_name}' records no requested budget (it predates budgets as prefixes); "
            "name the budget: make final TRIALS=N (or BUDGET=time:SECONDS)"
        )
    return stored


@dataclass
class Tally:
    """Where a study stands against its budget."""

    counted: list[FrozenTrial]  # finished trials that count, in trial-number order
    running: list[FrozenTrial]
    uncounted_failures: int

    @property
    def seconds(self) -> float:
        """The counted trials' device-seconds (what a time budget counts)."""
        return sum(spent_seconds(t) for t in self.counted)


def spent_seconds(trial: FrozenTrial) -> float:
    """What a trial spent of a time budget: its device-seconds (training seconds × its devices; a
    trial of an older version, without the record: its training seconds)."""
    if "device_seconds" in trial.user_attrs:
        return float(trial.user_attrs["device_seconds"])
    return float(trial.user_attrs.get("train_seconds", 0.0))


def fail_reason(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get("fail_reason")


def is_counted(trial: FrozenTrial) -> bool:
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and fail_reason(trial) in COUNTED_FAILURES


def is_uncounted_failure(trial: FrozenTrial) -> bool:
    """A trial that tried to train and failed without counting (it gets a replacement)."""
    return trial.state == TrialState.FAIL and not is_counted(trial) and fail_reason(trial) != DISCARDED


def tally(study: optuna.Study) -> Tally:
    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if is_counted(t)]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    return Tally(counted, running, sum(1 for t in trials if is_uncounted_failure(t)))


def slots(trials: list[FrozenTrial]) -> dict[int, tuple[int, int]]:
    """(slot, attempt) of every trial, by trial number (see the module docstring).

    A fresh trial's slot is the number of non-replacement trials numbered before it; a replacement
    carries its slot from creation. Both depend only on what is fixed when a trial is created, so
    every process computes the same slots.
    """
    out, fresh = {}, 0
    for t in sorted(trials, key=lambda t: t.number):
        if REPLACES in t.user_attrs:
            out[t.number] = (int(t.user_attrs[SLOT]), int(t.user_attrs.get(ATTEMPT, 0)))
        else:
            out[t.number] = (fresh, 0)
            fresh += 1
    return out


def counted_by_slot(study: optuna.Study) -> list[FrozenTrial]:
    """The counted trials in slot order (at most one per slot): the study's trials 0, 1, 2, …"""
    trials = study.get_trials(deepcopy=False)
    key = slots(trials)
    return sorted((t for t in trials if is_counted(t)), key=lambda t: key[t.number])


def prefix(study: optuna.Study, budget: Budget) -> list[FrozenTrial]:
    """The counted trials a comparison at ``budget`` uses, in slot order.

    Trials: slots 0 … N−1. Time: slots in order while the training seconds of those before stay
    below the budget (what one worker would have started). Either way the prefix stops at the
    first slot that is not counted yet (running, or waiting for its replacement), so a budget of N
    reads the same trials from a study of N slots and from one topped up to more.
    """
    trials = study.get_trials(deepcopy=False)
    key = slots(trials)
    counted = {key[t.number][0]: t for t in trials if is_counted(t)}
    out: list[FrozenTrial] = []
    spent = 0.0
    for slot in range(len(counted)):
        if slot not in counted:
            break
        if budget.kind == "trials" and slot >= budget.amount:
            break
        if budget.kind == "time" and spent >= budget.amount:
            break
        out.append(counted[slot])
        spent += spent_seconds(counted[slot])
    return out


def prefix_met(trials: list[FrozenTrial], budget: Budget) -> bool:
    """Whether a prefix spends its whole budget (N trials; at least the budget's device-seconds)."""
    if budget.kind == "trials":
        return len(trials) >= budget.amount
    return sum(spent_seconds(t) for t in trials) >= budget.amount


def enqueue_discarded_slots(study: optuna.Study, tune: TuneConfig) -> int:
    """Give back the slots a smaller trial budget discarded, now that the budget covers them.

    A worker that claims a slot beyond the budget discards it before training (``over_budget``);
    when a later sweep raises the budget (``TRIALS=30`` after ``TRIALS=20``), that slot is enqueued
    again (same slot and attempt, so the same sampler seed) instead of being skipped, and the
    topped-up study's slots stay 0, 1, 2, … like those of a study run to the larger budget at once.
    Returns how many slots were enqueued.
    """
    if tune.budget != "trials":
        return 0
    trials = study.get_trials(deepcopy=False)
    key = slots(trials)
    live = (TrialState.WAITING, TrialState.RUNNING)
    held = {key[t.number][0] for t in trials if t.state in live or is_counted(t) or is_uncounted_failure(t)}
    enqueued = set()
    for t in sorted(trials, key=lambda t: key[t.number]):
        slot, attempt = key[t.number]
        if fail_reason(t) != DISCARDED or slot >= tune.trials or slot in held or slot in enqueued:
            continue
        study.enqueue_trial({}, user_attrs={REPLACES: t.number, SLOT: slot, ATTEMPT: attempt})
        enqueued.add(slot)
    return len(enqueued)


def enqueue_replacement(study: optuna.Study, number: int) -> bool:
    """Enqueue the replacement of trial ``number`` if it failed without counting; returns whether.

    The replacement takes the same slot (next attempt unless the failure was external); the
    literature default is re-enqueued with its values, so it is always a counted trial.
    """
    trials = study.get_trials(deepcopy=False)
    failed = trials[number]
    if not is_uncounted_failure(failed):
        return False
    slot, attempt = slots(trials)[number]
    # no reason recorded: failed by Optuna's own stale-trial check (a dead worker), also external
    external = fail_reason(failed) in EXTERNAL_FAILURES or fail_reason(failed) is None
    attrs: dict[str, Any] = {
        REPLACES: number,
        SLOT: slot,
        ATTEMPT: attempt if external else attempt + 1,
    }
    params: dict[str, Any] = {}
    if failed.user_attrs.get("literature_default"):
        attrs["literature_default"] = True
        params = dict(failed.system_attrs.get("fixed_params") or failed.params)
    study.enqueue_trial(params, user_attrs=attrs)
    return True


def enqueue_missing_replacements(study: optuna.Study) -> int:
    """Replacements for uncounted failures that have none (a worker died before enqueuing it)."""
    trials = study.get_trials(deepcopy=False)
    replaced = {t.user_attrs[REPLACES] for t in trials if REPLACES in t.user_attrs}
    return sum(
        enqueue_replacement(study, t.number)
        for t in trials
        if is_uncounted_failure(t) and t.number not in replaced
    )


def record_realised_budget(study: optuna.Study) -> dict[str, Any]:
    """Store what the study has spent (counted trials, device-seconds, uncounted failures) and the
    compute its counted trials ran on (:func:`bench.tune.compute_record.study_compute`)."""
    t = tally(study)
    realised = {"trials": len(t.counted), "seconds": t.seconds, "uncounted_failures": t.uncounted_failures}
    study.set_user_attr("realised_budget", realised)
    study.set_user_attr(COMPUTE, study_compute(t.counted))
    return realised


def budget_left(study: optuna.Study, tune: TuneConfig, now: float) -> bool:
    """Whether another trial may start (counted + running slots stay within the budget)."""
    if tune.budget == "trials":
        trials = study.get_trials(deepcopy=False)
        key = slots(trials)
        taken = {key[t.number][0] for t in trials if t.state == TrialState.RUNNING or is_counted(t)}
        return sum(1 for s in taken if s < tune.trials) < tune.trials
    t = tally(study)
    running = sum((now - r.datetime_start.timestamp()) * devices(r) for r in t.running if r.datetime_start)
    return t.seconds + running < tune.seconds


def over_budget(study: optuna.Study, tune: TuneConfig, number: int) -> bool:
    """Whether the just-claimed trial ``number`` must not train (exact across workers and hosts).

    It must not when its slot lies beyond a trial budget, or when its slot is already held by an
    earlier trial that is waiting, running or counted (a second replacement of one failure,
    enqueued by two processes at once): each slot trains at most once, so the budget is exact.
    """
    trials = study.get_trials(deepcopy=False)
    key = slots(trials)
    slot = key[number][0]
    if tune.budget == "trials" and slot >= tune.trials:
        return True
    live = (TrialState.WAITING, TrialState.RUNNING)
    return any(
        t.number < number and key[t.number][0] == slot and (t.state in live or is_counted(t)) for t in trials
    )


def budget_met(study: optuna.Study, tune: TuneConfig) -> bool:
    """Whether the sweep is done: slots 0 … trials−1 counted, or the counted seconds spent."""
    if tune.budget == "trials":
        return prefix_met(prefix(study, Budget.of(tune)), Budget.of(tune))
    return tally(study).seconds >= tune.seconds


def best_trial(study: optuna.Study, trials: list[FrozenTrial]) -> FrozenTrial:
    """The COMPLETE trial of ``trials`` (a :func:`prefix`) with the highest hold-out score."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise NoCompletedTrialError(
            f"study '{study.study_name}' has no completed trial yet; run its sweep first"
        )
    return max(complete, key=lambda t: (t.value, -t.number))


def best_so_far(trials: list[FrozenTrial]) -> list[float | None]:
    """Best hold-out score after each trial of a prefix, in slot order (None until the first complete)."""
    best, curve = None, []
    for t in trials:
        if t.state == TrialState.COMPLETE and (best is None or t.value > best):
            best = t.value
        curve.append(best)
    return curve


def literature_default(study: optuna.Study) -> FrozenTrial | None:
    """The counted trial that ran the literature default (slot 0), or None when there is none."""
    return next((t for t in counted_by_slot(study) if t.user_attrs.get("literature_default")), None)


def seconds_tolerance(study: optuna.Study) -> float:
    """How far a time budget may be overshot: one trial per concurrent worker.

    The largest number of trials that ran at the same time times the longest counted trial's
    device-seconds (the protocol's bound; the report checks realised device-seconds against it).
    """
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.datetime_start and t.datetime_complete and fail_reason(t) != DISCARDED
    ]
    events = sorted(
        [(t.datetime_start.timestamp(), 1) for t in trials]
        + [(t.datetime_complete.timestamp(), -1) for t in trials]
    )
    concurrent = peak = 0
    for _, step in events:  # ends sort before starts at equal times
        concurrent += step
        peak = max(peak, concurrent)
    longest = max((spent_seconds(t) for t in tally(study).counted), default=0.0)
    return max(peak, 1) * longest
