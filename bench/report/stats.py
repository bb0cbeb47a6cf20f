"""Paired statistics of a KD method against the tuned baseline, over the seeds of the final runs.

The finals of every method use the same seed list, so method and baseline runs are paired by seed:
``Δ_s = mIoU_method(s) − mIoU_baseline(s)``. The report gives the mean Δ, a 95% percentile-bootstrap
confidence interval of that mean (resampling the paired differences) and the two-sided p-value of a
paired t-test. With the default three seeds both are coarse; they say how far the data support a
gap, not more.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class PairedDelta:
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def paired_delta(
    method: dict[int, float],
    baseline: dict[int, float],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDelta:
    """Mean paired difference (method − baseline) over the seeds both have, with CI and p-value."""
    seeds = sorted(set(method) & set(baseline))
    nan = float("nan")
    if not seeds:
        return PairedDelta(nan, nan, nan, nan, 0)
    a = np.array([method[s] for s in seeds], dtype=float)
    b = np.array([baseline[s] for s in seeds], dtype=float)
    d = a - b
    mean = float(d.mean())
    if len(d) < 2:
        return PairedDelta(mean, nan, nan, nan, 1)
    if np.ptp(d) == 0:  # identical differences: no spread to resample, t undefined
        return PairedDelta(mean, mean, mean, nan, len(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiny n: scipy warns about degenerate resamples
        ci = stats.bootstrap(
            (d,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
    p = float(stats.ttest_rel(a, b).pvalue)
    return PairedDelta(mean, float(ci.low), float(ci.high), p, len(d))


def undertuned(best_so_far: list[float | None], tail: float = 0.2) -> bool:
    """Whether the best score still improved during the last ``tail`` fraction of the trials.

    ``best_so_far`` holds the best value after each counted trial (None before the first complete
    one). A study whose best arrived within its last ``tail`` trials was still improving.
    """
    if not best_so_far or best_so_far[-1] is None:
        return False  # nothing completed: reported as missing values, not as under-tuning
    start = len(best_so_far) - max(1, math.ceil(tail * len(best_so_far)))
    before = best_so_far[start - 1] if start > 0 else None
    return before is None or best_so_far[-1] > before
