"""Re-scoring studies as if nothing had been pruned: does pruning change the tuned best, or the verdict?

The pruner stops a trial whose intermediate hold-out score lags the earlier trials'. A slow starter
(a KD term that needs warm-up) may be stopped although it would have finished best, and nobody sees
it. :func:`rescore_study` re-runs each pruned trial of a study's comparison prefix to completion —
the trial's own config (same values, same tuning schedule, same seed, same hold-out), only without
the pruner — and scores the study as if none had been pruned. The results are kept in the study
(user attribute :data:`RESCORED`, trial number → hold-out mIoU), so a second call re-runs nothing.

What it shows (:func:`format_rescores`), per study: each pruned trial's score at completion, the
best trial with pruning (what ``make final`` retrains) and without, and whether it changes; per KD
method of the group: its best hold-out mIoU minus the baseline's, with and without pruning, and
whether the sign — the tuning-time verdict — changes. The finals are not retrained: a changed best
means the study's finals retrained another configuration than an unpruned study would have.

Price: one full trial per pruned trial (:func:`price`: their number × the median training seconds
of the study's complete trials), printed before anything trains.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.config import RunConfig
from bench.config.budget import Budget
from bench.errors import NonFiniteLossError
from bench.tune import study as st
from bench.tune.trial_config import trial_config, trial_values
from bench.utils.units import PERCENT, to_percent
from bench.workers.multi_gpu import trial_trainer

# study user attribute: {trial number: hold-out mIoU in percent, or None when it diverged}
RESCORED = "rescored_without_pruning"


@dataclass
class StudyRescore:
    """One study's prefix at one budget, with its pruned trials' scores at completion."""

    name: str
    method: str
    budget: Budget
    trials: list[FrozenTrial]  # the comparison's prefix (slot order)
    rescored: dict[int, float | None] = field(default_factory=dict)  # %, None: diverged when completed
    repeat: int = 0
    unit: str = PERCENT  # the unit of the study's trial values (older studies: fractions)

    @property
    def pruned(self) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == TrialState.PRUNED]

    def best(self, pruning: bool) -> tuple[int, float] | None:
        """(trial number, hold-out mIoU %) of the best trial with pruning (as the study recorded it) or
        without (pruned trials scored at completion); ties go to the lower trial number."""
        scores = {
            t.number: to_percent(t.value, self.unit) for t in self.trials if t.state == TrialState.COMPLETE
        }
        if not pruning:
            scores.update({n: v for n, v in self.rescored.items() if v is not None and math.isfinite(v)})
        if not scores:
            return None
        number = max(scores, key=lambda n: (scores[n], -n))
        return number, scores[number]

    @property
    def changes(self) -> bool:
        return self.best(True) != self.best(False) and self.best(False) is not None


def prefix_of(study: optuna.Study, budget: Budget | None) -> tuple[Budget, list[FrozenTrial]]:
    """The comparison's prefix: at ``budget``, or at the largest budget a sweep asked of the study."""
    budget = budget or Budget.from_dict(st.requested_budget(study))
    return budget, st.prefix(study, budget)


def stored(study: optuna.Study) -> dict[int, float | None]:
    return {int(k): v for k, v in (study.user_attrs.get(RESCORED) or {}).items()}


def price(study: optuna.Study, trials: list[FrozenTrial]) -> tuple[int, float]:
    """(pruned trials still to re-run, their estimated training seconds: one complete trial each)."""
    done = stored(study)
    todo = [t for t in trials if t.state == TrialState.PRUNED and t.number not in done]
    complete = [t.user_attrs.get("train_seconds", 0.0) for t in trials if t.state == TrialState.COMPLETE]
    return len(todo), len(todo) * (statistics.median(complete) if complete else math.nan)


def completed_score(cfg: RunConfig, label: str) -> float | None:
    """Train ``cfg`` to the end of its schedule without a pruner; its hold-out mIoU in percent (None:
    diverged)."""
    try:
        row = trial_trainer(cfg, [], label).fit()
    except NonFiniteLossError:
        return None
    return float(row["metrics"]["miou"])


def rescore_study(
    study: optuna.Study,
    cfg: RunConfig,
    budget: Budget | None = None,
    train: Callable[[RunConfig, str], float | None] = completed_score,
) -> StudyRescore:
    """Re-run the prefix's pruned trials to completion (those not re-run before) and return the study
    scored both ways. ``cfg``: the command's config (where trials write: ``tune.trials_dir``); each
    re-run is the study's own trial config at the study's tuning schedule. ``train``: how one trial's
    config is trained and scored (tests pass their own)."""
    budget, trials = prefix_of(study, budget)
    overrides, settings = study.user_attrs["overrides"], study.user_attrs["settings"]
    done = stored(study)
    for t in trials:
        if t.state != TrialState.PRUNED or t.number in done:
            continue
        folder = Path(cfg.tune.trials_dir) / study.study_name / "rescore" / f"trial_{t.number:04d}"
        values = {
            **trial_values(cfg, study.study_name, t.number, t.params),
            "train.iterations": settings["trial_iterations"],  # the study's schedule, not the command's
            "train.val_interval": settings["val_interval"],
            "output_dir": str(folder),
        }
        done[t.number] = train(trial_config(overrides, values), f"re-score trial {t.number}")
        study.set_user_attr(RESCORED, {str(k): v for k, v in sorted(done.items())})  # kept as it goes
    settings = study.user_attrs["settings"]
    return StudyRescore(
        study.study_name,
        settings["method"],
        budget,
        trials,
        done,
        int(settings.get("repeat", 0)),
        st.value_unit(study),
    )


def _pct(value: float | None) -> str:
    return "diverged" if value is None or not math.isfinite(value) else f"{value:.2f}"


def format_rescores(results: list[StudyRescore]) -> str:
    """Per study: the pruned trials' scores at completion and the best with and without pruning; per
    KD method: its best hold-out mIoU minus the baseline's, both ways (hold-out mIoU in percent)."""
    lines = []
    for r in results:
        lines.append(f"{r.name} ({r.budget.label}): {len(r.pruned)} of {len(r.trials)} counted trials pruned")
        for t in r.pruned:
            lines.append(f"  trial {t.number:>3}: pruned ({t.user_attrs.get('pruned', '')}); "
                         f"completed: {_pct(r.rescored.get(t.number))}")  # fmt: skip
        with_, without = r.best(True), r.best(False)
        show = {b: "-" if b is None else f"trial {b[0]} ({_pct(b[1])})" for b in (with_, without)}
        verdict = "CHANGES" if r.changes else "unchanged"
        lines.append(
            f"  best with pruning: {show[with_]}; without: {show[without]}: the best configuration {verdict}"
        )
    bases = {r.repeat: r for r in results if r.method == "baseline"}
    for r in results:
        base = bases.get(r.repeat)
        if base is None or r is base:
            continue
        ends = [r.best(True), r.best(False), base.best(True), base.best(False)]
        if None in ends:
            continue
        d_with, d_without = ends[0][1] - ends[2][1], ends[1][1] - ends[3][1]
        flip = "CHANGES" if (d_with > 0) != (d_without > 0) else "unchanged"
        lines.append(
            f"{r.method} − baseline (repeat {r.repeat}), best hold-out mIoU: {d_with:+.2f} with pruning, "
            f"{d_without:+.2f} without: the tuning verdict {flip}"
        )
    return "\n".join(lines)
