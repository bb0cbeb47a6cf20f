"""Paired statistics of a KD method against the tuned baseline, over the seeds of the final runs.

The finals of every method use the same seed list, so method and baseline runs are paired by seed:
``d_s = mIoU_method(s) − mIoU_baseline(s)``, ``n`` pairs, mean ``Δ``, standard deviation ``s_d``.

- **Interval** (default ``t``): the paired t-interval ``Δ ± t_{0.975, n−1} · s_d / √n``
  (``scipy.stats.ttest_rel(...).confidence_interval()``), the interval the p-value inverts: it
  excludes 0 exactly when p < 0.05. ``bca``: a bias-corrected and accelerated bootstrap of the mean
  (``scipy.stats.bootstrap(method='BCa')``), offered from :data:`BCA_MIN_SEEDS` pairs up; with fewer
  pairs resampling cannot reach the tails (a percentile bootstrap of 3 pairs returns [min, max] and
  covers ≈ 76% instead of 95%; ``python -m bench.report.simulate`` measures it).
- **p-value**: two-sided paired t-test; :func:`holm` adjusts the p-values of the methods of one
  comparison for multiplicity (family-wise error ≤ α).
- **Minimum detectable effect** (:func:`min_detectable_effect`): the smallest |Δ| the paired t-test
  with these n pairs detects with probability 0.8 at α = 0.05 if the true seed sd is the observed
  ``s_d``: the δ solving ``P(|T| > t_{1−α/2, n−1}) = 0.8`` with ``T`` noncentral t
  (df = n−1, noncentrality δ√n / s_d). Read "no significant gap" against it.
- **Constant Δ** (every seed gives the same difference, ``s_d = 0``): the t-procedures degenerate
  (zero-width interval, t = ±∞). The seeds then carry no information about the spread, so the
  interval and the minimum detectable effect are reported as not estimable (NaN) and the p-value is
  the exact two-sided sign-flip permutation test, which needs no variance: ``2 / 2^n`` for a
  non-zero constant (0.25 with 3 seeds), 1 for Δ = 0. The row is marked ``constant Δ``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
BCA_MIN_SEEDS = 10
CI_METHODS = ("t", "bca")


@dataclass
class PairedDelta:
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    mde: float = math.nan  # minimum detectable effect (points), see min_detectable_effect
    sd: float = math.nan  # standard deviation of the paired differences
    constant: bool = False  # every pair has the same difference (see the module docstring)


def paired_delta(
    method: dict[int, float],
    baseline: dict[int, float],
    ci: str = "t",
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> PairedDelta:
    """Mean paired difference (method − baseline) over the seeds both have, with CI, p-value and MDE."""
    if ci not in CI_METHODS:
        raise ValueError(f"ci='{ci}'; valid: {', '.join(CI_METHODS)}")
    seeds = sorted(set(method) & set(baseline))
    nan = math.nan
    if not seeds:
        return PairedDelta(nan, nan, nan, nan, 0)
    a = np.array([method[s] for s in seeds], dtype=float)
    b = np.array([baseline[s] for s in seeds], dtype=float)
    d = a - b
    n, mean = len(d), float(d.mean())
    if n < 2:
        return PairedDelta(mean, nan, nan, nan, 1)
    sd = float(d.std(ddof=1))
    if np.ptp(d) == 0:
        # Exact sign-flip test: only the all-plus and all-minus patterns reach |mean| = |Δ| (Δ ≠ 0).
        p = 1.0 if mean == 0 else min(1.0, 2.0 ** (1 - n))
        return PairedDelta(mean, nan, nan, p, n, nan, 0.0, constant=True)
    test = stats.ttest_rel(a, b)
    if ci == "bca":
        if n < BCA_MIN_SEEDS:
            raise ValueError(f"the BCa bootstrap needs at least {BCA_MIN_SEEDS} paired seeds, got {n}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about degenerate resamples
            interval = stats.bootstrap(
                (d,),
                np.mean,
                n_resamples=n_resamples,
                confidence_level=confidence,
                method="BCa",
                rng=np.random.default_rng(seed),
            ).confidence_interval
    else:
        interval = test.confidence_interval(confidence)
    return PairedDelta(
        mean,
        float(interval.low),
        float(interval.high),
        float(test.pvalue),
        n,
        sd * min_detectable_effect(n),
        sd,
    )


def min_detectable_effect(n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest standardised effect δ/s_d the two-sided paired t-test with ``n`` pairs detects with ``power``.

    Solves ``1 − F(t_c; n−1, δ√n) + F(−t_c; n−1, δ√n) = power`` for δ (``F``: noncentral t CDF,
    ``t_c = t_{1−α/2, n−1}``). Multiply by the observed seed sd for points. NaN for n < 2.
    """
    if n < 2:
        return math.nan
    df = n - 1
    tc = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(effect: float) -> float:
        nc = effect * math.sqrt(n)
        lower = stats.nct.cdf(-tc, df, nc)  # the wrong-sign tail; scipy returns NaN once it underflows
        return stats.nct.sf(tc, df, nc) + (0.0 if math.isnan(lower) else lower) - power

    high = 1.0
    while shortfall(high) < 0:  # power grows with the effect; widen until it passes the target
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control); NaN entries stay NaN.

    With the m finite p-values sorted ascending, p_(1) ≤ … ≤ p_(m), the adjusted value is
    ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``; a method is significant at α when its adjusted p ≤ α.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()


def undertuned_tail(n_trials: int, tail: float = 0.2) -> int:
    """How many of the last counted trials :func:`undertuned` looks at: ⌊tail · N⌋, at least 1."""
    return max(1, math.floor(tail * n_trials + 1e-9))


def undertuned(best_so_far: list[float | None], min_gain: float = 0.0, tail: float = 0.2) -> bool:
    """Whether the study was still improving at its end.

    ``best_so_far`` holds the best hold-out score after each counted trial (None before the first
    complete one). With N counted trials and L = ⌊0.2·N⌋ (at least 1; 6 trials → 1, 20 → 4,
    100 → 20), the study is under-tuned when the best score after all N trials exceeds the best
    after the first N − L trials by more than ``min_gain`` (same units; the report passes the
    method's seed standard deviation, so that an improvement within seed noise does not count), or
    when no trial had completed before the last L.
    """
    if not best_so_far or best_so_far[-1] is None:
        return False  # nothing completed: reported as missing values, not as under-tuning
    start = len(best_so_far) - undertuned_tail(len(best_so_far), tail)
    before = best_so_far[start - 1] if start > 0 else None
    return before is None or best_so_far[-1] - before > min_gain
