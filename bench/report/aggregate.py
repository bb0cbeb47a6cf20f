"""Aggregates across comparisons: a method's gain over the tuned baseline across datasets and pairs.

Holm corrects within one dataset × student × teacher; a claim that spans several comparisons needs
aggregate statistics. Following Agarwal et al. (NeurIPS 2021, "Deep RL at the edge of the
statistical precipice", the ``rliable`` package), with *tasks* = comparisons (dataset × student ×
teacher) and *runs* = the paired final runs of a task (repeat × seed, each KD run paired with the
baseline's run of the same repeat and seed):

- ``iqm_delta``: the interquartile mean (25% trimmed mean, ``rliable.metrics.aggregate_iqm``) of the
  paired differences Δ = mIoU_method − mIoU_baseline (points) over every run of every task;
  ``iqm_delta_pct``: the same of Δ normalised by the task's mean baseline mIoU (100·Δ/mIoU_base, % of
  the baseline), which puts datasets with different mIoU levels on one scale.
- ``p_improve``: probability of improvement (``rliable.metrics.probability_of_improvement``), the
  chance that a run of the method beats a run of the tuned baseline on a task (Mann–Whitney U /
  (n_x·n_y), ties ½), averaged over tasks. 0.5: no better than the baseline.
- each with a 95% **stratified bootstrap** percentile interval: the runs of each task are resampled
  with replacement within the task (the baseline's and the method's independently for
  ``p_improve``), :data:`RESAMPLES` times, as rliable's ``StratifiedBootstrap`` does. rliable 1.2's
  own bootstrap (``rliable.library``) cannot run beside pandas 3: it subclasses ``arch``'s, arch 7.2
  fails to import under pandas 3 (``TypeError: deprecate_kwarg()``) and arch 8.0 refuses the
  ``random_state`` keyword rliable passes (checked 2026-12-06), so the same resampling is done here
  with numpy; the statistics themselves are rliable's (``rliable.metrics`` needs only scipy).
- the **performance profile**: for each threshold τ, the fraction of runs (all tasks) whose
  normalised Δ exceeds τ, with a pointwise stratified-bootstrap band. A curve to the right of
  another dominates it; where it crosses 0 tells how often the method beats the baseline at all.

With 2–3 seeds per task the bootstrap intervals undercover (see :mod:`bench.report.stats`); more
tasks, more seeds or repeats tighten them. Written by ``make report`` once there are two or more
comparisons (:data:`MIN_COMPARISONS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rliable import metrics

from bench.utils.io import write_text_atomic

MIN_COMPARISONS = 2
RESAMPLES = 2000
CONFIDENCE = 0.95
COLUMNS = [
    "method",
    "comparisons",
    "runs",
    "iqm_delta",
    "iqm_delta_ci_low",
    "iqm_delta_ci_high",
    "iqm_delta_pct",
    "iqm_delta_pct_ci_low",
    "iqm_delta_pct_ci_high",
    "p_improve",
    "p_improve_ci_low",
    "p_improve_ci_high",
    "tasks",
]

Task = tuple[str, str, str]  # dataset, student, teacher


@dataclass
class Paired:
    """One method on one task: its runs and the baseline's, paired by (repeat, seed)."""

    method: np.ndarray  # mIoU (%) per paired run
    baseline: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        return self.method - self.baseline

    @property
    def delta_pct(self) -> np.ndarray:
        return 100 * self.delta / self.baseline.mean()


def paired_runs(runs: pd.DataFrame) -> dict[str, dict[Task, Paired]]:
    """Method → task → its paired runs, from :func:`bench.report.table.final_runs` of one budget.
    A KD run without the baseline's run of the same repeat and seed is left out."""
    out: dict[str, dict[Task, Paired]] = {}
    if runs.empty:
        return out
    base = runs[runs["method"] == "baseline"]
    base_scores = {(r.dataset, r.student, r.repeat, r.seed): r.miou for r in base.itertuples()}
    kd = runs[(runs["method"] != "baseline") & runs["teacher"].map(lambda t: isinstance(t, str))]
    for (method, dataset, student, teacher), part in kd.groupby(
        ["method", "dataset", "student", "teacher"], sort=True
    ):
        pairs = [
            (r.miou, base_scores[key])
            for r in part.sort_values(["repeat", "seed"]).itertuples()
            if (key := (dataset, student, r.repeat, r.seed)) in base_scores
        ]
        if pairs:
            m, b = np.array(pairs, dtype=float).T
            out.setdefault(method, {})[(dataset, student, teacher)] = Paired(m, b)
    return out


def count_comparisons(paired: dict[str, dict[Task, Paired]]) -> int:
    """How many dataset × student × teacher comparisons have a baseline and a KD method."""
    return len({task for tasks in paired.values() for task in tasks})


def iqm(tasks: Sequence[np.ndarray]) -> float:
    """rliable's IQM over every run of every task (tasks may hold different numbers of runs)."""
    return float(metrics.aggregate_iqm(np.concatenate(tasks)))


def probability_of_improvement(methods: Sequence[np.ndarray], baselines: Sequence[np.ndarray]) -> float:
    """rliable's probability of improvement, task by task (each a one-task matrix), averaged."""
    return float(
        np.mean(
            [
                metrics.probability_of_improvement(x[:, None], y[:, None])
                for x, y in zip(methods, baselines, strict=True)
            ]
        )
    )


def stratified_interval(
    groups: Sequence[Sequence[np.ndarray]],
    statistic: Callable[..., float | np.ndarray],
    reps: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``statistic(*groups)`` under the stratified bootstrap: every array
    (one per task, per group) is resampled with replacement within itself, independently."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        resampled = [[a[rng.integers(0, a.size, a.size)] for a in group] for group in groups]
        draws.append(np.atleast_1d(statistic(*resampled)))
    alpha = (1 - confidence) / 2
    stacked = np.asarray(draws, dtype=float)
    return np.quantile(stacked, alpha, axis=0), np.quantile(stacked, 1 - alpha, axis=0)


def aggregate_table(paired: dict[str, dict[Task, Paired]], reps: int = RESAMPLES) -> pd.DataFrame:
    """One row per KD method: IQM of Δ and of Δ%, probability of improvement, each with its interval."""
    rows = []
    for method, tasks in sorted(paired.items()):
        items = [tasks[t] for t in sorted(tasks)]
        deltas = [p.delta for p in items]
        pcts = [p.delta_pct for p in items]
        ms, bs = [p.method for p in items], [p.baseline for p in items]
        d_low, d_high = stratified_interval([deltas], iqm, reps)
        p_low, p_high = stratified_interval([pcts], iqm, reps)
        i_low, i_high = stratified_interval([ms, bs], probability_of_improvement, reps)
        rows.append(
            {
                "method": method,
                "comparisons": len(items),
                "runs": sum(d.size for d in deltas),
                "iqm_delta": iqm(deltas),
                "iqm_delta_ci_low": float(d_low[0]),
                "iqm_delta_ci_high": float(d_high[0]),
                "iqm_delta_pct": iqm(pcts),
                "iqm_delta_pct_ci_low": float(p_low[0]),
                "iqm_delta_pct_ci_high": float(p_high[0]),
                "p_improve": probability_of_improvement(ms, bs),
                "p_improve_ci_low": float(i_low[0]),
                "p_improve_ci_high": float(i_high[0]),
                "tasks": "; ".join("/".join(t) for t in sorted(tasks)),
            }
        )
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def performance_profiles(
    paired: dict[str, dict[Task, Paired]], taus: np.ndarray, reps: int = RESAMPLES
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Method → (profile, band low, band high): the fraction of runs with Δ% > τ for each τ."""

    def profile(tasks: Sequence[np.ndarray]) -> np.ndarray:
        runs = np.concatenate(tasks)
        return (runs[:, None] > taus[None, :]).mean(axis=0)

    out = {}
    for method, tasks in sorted(paired.items()):
        pcts = [tasks[t].delta_pct for t in sorted(tasks)]
        low, high = stratified_interval([pcts], profile, reps)
        out[method] = (profile(pcts), low, high)
    return out


def profile_thresholds(paired: dict[str, dict[Task, Paired]], points: int = 101) -> np.ndarray:
    """An even τ grid from below the smallest to above the largest Δ% of any run."""
    values = np.concatenate([p.delta_pct for tasks in paired.values() for p in tasks.values()])
    low, high = float(values.min()), float(values.max())
    pad = max(0.05 * (high - low), 1e-6)
    return np.linspace(low - pad, high + pad, points)


def write_aggregate(
    runs: pd.DataFrame, tables_dir: Path, figures_dir: Path, reps: int = RESAMPLES
) -> list[Path]:
    """``aggregate.{csv,md,tex}`` and ``aggregate.{png,pdf}`` when the runs hold
    :data:`MIN_COMPARISONS` or more comparisons; nothing (an empty list) otherwise."""
    from bench.report.figures import save_figure

    paired = paired_runs(runs)
    if count_comparisons(paired) < MIN_COMPARISONS:
        return []
    table = aggregate_table(paired, reps)
    tables_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: tables_dir / f"aggregate.{ext}" for ext in ("csv", "md", "tex")}
    write_text_atomic(paths["csv"], table.to_csv(index=False))
    write_text_atomic(paths["md"], table.to_markdown(index=False, floatfmt=".2f") + "\n")
    latex = table.style.format(precision=2, na_rep="--").hide(axis="index").to_latex(hrules=True)
    write_text_atomic(paths["tex"], latex.replace("_", r"\_"))
    taus = profile_thresholds(paired)
    figure = aggregate_figure(table, taus, performance_profiles(paired, taus, reps))
    return [*paths.values(), *save_figure(figure, figures_dir / "aggregate.png")]


def aggregate_figure(table: pd.DataFrame, taus: np.ndarray, profiles: dict[str, Any]) -> Any:
    """IQM of Δ, IQM of Δ% and probability of improvement with their intervals, and the
    performance profiles of Δ% (fraction of runs with Δ% > τ, pointwise 95% band)."""
    import matplotlib.pyplot as plt

    from bench.report.figures import plain_ticks

    fig, axes = plt.subplots(1, 4, figsize=(17, 2.4 + 0.45 * max(len(table), 1)), squeeze=False)
    y = list(range(len(table)))
    panels = (
        ("iqm_delta", "IQM of Δ mIoU (points)", 0.0),
        ("iqm_delta_pct", "IQM of Δ (% of baseline mIoU)", 0.0),
        ("p_improve", "P(method run > baseline run)", 0.5),
    )
    for ax, (col, label, reference) in zip(axes[0], panels, strict=False):
        low = (table[col] - table[f"{col}_ci_low"]).clip(lower=0)
        high = (table[f"{col}_ci_high"] - table[col]).clip(lower=0)
        ax.errorbar(table[col], y, xerr=[low, high], fmt="o", color="tab:blue", ecolor="gray", capsize=3)
        ax.axvline(reference, color="black", lw=0.8)
        ax.set_yticks(y, list(table["method"]))
        ax.set_xlabel(f"{label}, 95% CI")
        plain_ticks(ax)
    comparisons = int(table["comparisons"].max()) if len(table) else 0
    axes[0, 0].set_title(f"across {comparisons} comparisons (stratified bootstrap)", fontsize=10)
    ax = axes[0, 3]
    for i, (method, (profile, low, high)) in enumerate(profiles.items()):
        ax.plot(taus, profile, color=f"C{i}", label=method)
        ax.fill_between(taus, low, high, color=f"C{i}", alpha=0.2, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("τ: Δ (% of baseline mIoU)")
    ax.set_ylabel("fraction of runs with Δ > τ")
    ax.set_title("performance profile", fontsize=10)
    ax.legend(fontsize=8)
    plain_ticks(ax)
    fig.tight_layout()
    return fig
