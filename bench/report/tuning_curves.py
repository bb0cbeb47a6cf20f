"""Tuning curves with exact confidence bands (opda), and the crossover budget with its interval.

A *tuning curve* gives the best hold-out score a study of k trials reaches. From the N counted
trials of a study (pooled over its repeats: independent studies of one method draw from one
distribution of trial scores) this module computes, with the ``opda`` package (Lourie, Cho and He,
"Show Your Work with Confidence", 2024):

- ``expected``: the **unbiased** estimate of the expected best of k trials, k ≤ N (the U-statistic:
  the mean best of k trials drawn *without* replacement, ``EmpiricalDistribution.u_tuning_curve``).
  Dodge et al.'s estimator (:func:`bench.report.curves.expected_max`, kept as ``dodge``) draws with
  replacement, so a trial can be "drawn twice": it is biased low for k > 1 and reaches the sample
  maximum only as k → ∞, whereas the unbiased curve equals the sample maximum at k = N.
- ``median``: the **median tuning curve**, the score that half of all k-trial searches exceed
  (``quantile_tuning_curve``), with ``low``/``high``: **exact, distribution-free, simultaneous**
  confidence bands (``confidence_bands``, Learned-Miller–DeStefano, equal-tailed): with probability
  ≥ the band's confidence the whole true median curve lies inside, for every k at once, whatever
  the score distribution (exact for continuous scores; conservative with ties, e.g. pruned trials).
  Where N trials cannot bound the curve the band reaches the score's support (0 or 100 mIoU); it is
  reported as NaN ("not bounded by these trials"). The expected curve has no such exact band short
  of the support itself (8 trials of ≈ 40 ± 3 mIoU: the band of the expected best of 8 is
  ≈ [39, 99.5]), which is why the bands and the crossover use the median curve.

**Crossover.** ``crossover_trials`` is the smallest k ≤ N at which the baseline's median curve
reaches the method's median curve at the full budget N. Its interval [k_lo, k_hi] uses the bands:
k_lo is the first k where the baseline's upper band reaches the method's lower band at N, k_hi the
first k where the baseline's lower band reaches the method's upper band at N ("not within N" if it
never does). Each study's band is built at confidence √0.95, so with independent studies both bands
hold together with probability ≥ 0.95, and then the true crossover lies in [k_lo, k_hi].

The bands assume i.i.d. trials (random search, ``tune.sampler=random``); under TPE later trials
depend on earlier ones and the curves describe "k trials drawn from the configurations the study
visited", as before.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from opda.nonparametric import EmpiricalDistribution

from bench.report.curves import crossover_label, expected_max, scores
from bench.utils.io import write_text_atomic

CONFIDENCE = 0.95
# Two independent studies' bands, each at √0.95, hold together with probability ≥ 0.95.
PAIR_CONFIDENCE = math.sqrt(CONFIDENCE)
BAND_METHOD = "ld_equal_tailed"  # almost as tight as highest-density, an order of magnitude faster
SUPPORT = (0.0, 100.0)  # mIoU in percent
CURVE_COLUMNS = [
    "dataset",
    "student",
    "teacher",
    "budget",
    "method",
    "repeats",
    "k",
    "expected_unbiased",
    "expected_dodge",
    "median",
    "median_low",
    "median_high",
    "crossover_trials",
]


@dataclass
class TuningCurve:
    """One method's tuning curves over k = 1 … n_trials (scores in the units they were given)."""

    expected: np.ndarray  # unbiased expected best of k trials (U-statistic)
    dodge: np.ndarray  # Dodge et al.'s expected best (draws with replacement), for comparison
    median: np.ndarray  # median best of k trials
    low: np.ndarray  # exact simultaneous lower band of the median curve (NaN: unbounded)
    high: np.ndarray  # upper band (NaN: not bounded by these trials)
    n_trials: int  # N: the trials of one study (the shortest, with repeats)
    n_pooled: int  # trials pooled over the repeats
    confidence: float

    @property
    def k(self) -> np.ndarray:
        return np.arange(1, self.n_trials + 1)


def tuning_curve(
    studies: Sequence[Sequence[float | None]],
    confidence: float = CONFIDENCE,
    support: tuple[float, float] = SUPPORT,
    seed: int = 0,
) -> TuningCurve | None:
    """The tuning curves of one method from its studies' counted trials (one list per repeat).

    None (pruned, diverged) enters at its study's lowest completed score (:func:`curves.scores`);
    a study without any completed trial is left out; None if nothing is left.
    """
    parts = [scores(v) for v in studies if v is not None and len(v)]
    parts = [p for p in parts if p.size]
    if not parts:
        return None
    ys = np.concatenate(parts)
    n = min(p.size for p in parts)
    k = np.arange(1, n + 1)
    a, b = support
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # opda warns that ties make the band conservative
        lower_cdf, point, upper_cdf = EmpiricalDistribution.confidence_bands(
            ys, confidence, a=a, b=b, method=BAND_METHOD, generator=np.random.default_rng(seed), n_jobs=1
        )
    low = np.asarray(upper_cdf.quantile_tuning_curve(k), dtype=float)  # the upper CDF gives the lower curve
    high = np.asarray(lower_cdf.quantile_tuning_curve(k), dtype=float)
    low[low <= a] = np.nan
    high[high >= b] = np.nan
    return TuningCurve(
        expected=np.asarray(point.u_tuning_curve(k), dtype=float),
        dodge=np.mean([expected_max(p)[:n] for p in parts], axis=0),
        median=np.asarray(point.quantile_tuning_curve(k), dtype=float),
        low=low,
        high=high,
        n_trials=n,
        n_pooled=int(ys.size),
        confidence=confidence,
    )


@dataclass
class Crossover:
    """The smallest k at which the baseline's median curve reaches the method's at its full budget."""

    k: int | None  # None: not within the baseline's N trials
    k_low: int | None
    k_high: int | None
    n: int  # the baseline's N

    def label(self) -> str:
        """``3`` or ``not within 8`` (the point estimate)."""
        return crossover_label(self.k, self.n)

    def interval(self) -> str:
        """``[1, not within 8]``: the 95% interval of the crossover budget."""
        return f"[{crossover_label(self.k_low, self.n)}, {crossover_label(self.k_high, self.n)}]"


def _first(reached: np.ndarray) -> int | None:
    hit = np.flatnonzero(reached)
    return int(hit[0]) + 1 if hit.size else None


def crossover(baseline: TuningCurve, method: TuningCurve) -> Crossover:
    """Crossover budget of ``method`` against ``baseline`` with its interval (module docstring);
    both curves built at :data:`PAIR_CONFIDENCE` for a joint 95% statement."""
    target, eps = method.median[-1], 1e-12
    target_low = -np.inf if np.isnan(method.low[-1]) else method.low[-1]
    target_high = np.inf if np.isnan(method.high[-1]) else method.high[-1]
    base_high = np.where(np.isnan(baseline.high), np.inf, baseline.high)
    base_low = np.where(np.isnan(baseline.low), -np.inf, baseline.low)
    return Crossover(
        k=_first(baseline.median >= target - eps),
        k_low=_first(base_high >= target_low - eps),
        k_high=_first(base_low >= target_high - eps),
        n=baseline.n_trials,
    )


def method_crossover(
    baseline_studies: Sequence[Sequence[float | None]], method_studies: Sequence[Sequence[float | None]]
) -> Crossover | None:
    """:func:`crossover` from the per-trial scores of the two methods' studies; None without scores."""
    base = tuning_curve(baseline_studies, PAIR_CONFIDENCE)
    method = tuning_curve(method_studies, PAIR_CONFIDENCE)
    if base is None or method is None:
        return None
    return crossover(base, method)


def curves_table(curves: dict[tuple, dict[str, list[list[float | None]]]]) -> list[dict[str, object]]:
    """One record per (dataset, student, teacher, budget) × method × k: every estimator side by side
    (keys and values as :func:`bench.report.table.budget_curves`, mIoU in percent)."""
    out: list[dict[str, object]] = []
    for (dataset, student, teacher, budget), methods in sorted(curves.items(), key=str):
        base = tuning_curve(methods["baseline"], PAIR_CONFIDENCE) if "baseline" in methods else None
        for method, studies in sorted(methods.items(), key=lambda m: (m[0] != "baseline", m[0])):
            curve = tuning_curve(studies)
            if curve is None:
                continue
            cross = ""
            if base is not None and method != "baseline":
                paired = tuning_curve(studies, PAIR_CONFIDENCE)
                c = crossover(base, paired) if paired is not None else None
                cross = f"{c.label()} {c.interval()}" if c else ""
            for i, k in enumerate(curve.k):
                out.append(
                    {
                        "dataset": dataset,
                        "student": student,
                        "teacher": teacher,
                        "budget": budget,
                        "method": method,
                        "repeats": len(studies),
                        "k": int(k),
                        "expected_unbiased": curve.expected[i],
                        "expected_dodge": curve.dodge[i],
                        "median": curve.median[i],
                        "median_low": curve.low[i],
                        "median_high": curve.high[i],
                        "crossover_trials": cross,
                    }
                )
    return out


def write_curves_table(
    curves: dict[tuple, dict[str, list[list[float | None]]]], out_dir: Path, name: str = "budget_curves"
) -> list[Path]:
    """``<name>.csv`` (full precision) and ``<name>.md`` (2 decimals) of :func:`curves_table`."""
    import pandas as pd

    table = pd.DataFrame.from_records(curves_table(curves), columns=CURVE_COLUMNS)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    write_text_atomic(csv, table.to_csv(index=False))
    write_text_atomic(md, table.to_markdown(index=False, floatfmt=".2f") + "\n")
    return [csv, md]
