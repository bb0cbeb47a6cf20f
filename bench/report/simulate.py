"""``python -m bench.report.simulate``: coverage of the report's 95% intervals for Δ, by simulation.

Draws ``--reps`` samples of n paired differences (n = 3, 5, 10 by default) from a known
distribution with mean μ, computes each interval the report offers (and the percentile bootstrap
it used to use) and prints how often the interval contains μ. A calibrated 95% interval covers
95% ± 1.96·√(0.95·0.05/reps). Distributions: ``normal`` (N(1, 1)) and ``skewed`` (a centred
exponential shifted to mean 1: seed effects with a long tail). Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np
from scipy import stats

MEAN = 1.0


def draw(dist: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    if dist == "normal":
        return rng.normal(MEAN, 1.0, shape)
    if dist == "skewed":
        return MEAN + rng.exponential(1.0, shape) - 1.0
    raise ValueError(f"unknown distribution '{dist}'; valid: normal, skewed")


def t_coverage(d: np.ndarray) -> float:
    """Paired t-interval mean ± t_{0.975, n−1}·sd/√n, vectorised over rows."""
    n = d.shape[1]
    half = stats.t.ppf(0.975, n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    return float(np.mean(np.abs(d.mean(axis=1) - MEAN) <= half))


def bootstrap_coverage(d: np.ndarray, method: str, resamples: int, seed: int, batch: int = 250) -> float:
    """scipy's bootstrap interval of the mean (``percentile`` or ``BCa``), row by row in batches."""
    hits = 0
    for start in range(0, len(d), batch):
        chunk = d[start : start + batch]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples of tiny n
            ci = stats.bootstrap(
                (chunk,),
                np.mean,
                axis=1,
                n_resamples=resamples,
                method=method,
                rng=np.random.default_rng(seed + start),
            ).confidence_interval
        hits += int(np.sum((ci.low <= MEAN) & (ci.high >= MEAN)))
    return hits / len(d)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report.simulate", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10], help="numbers of paired seeds")
    parser.add_argument("--reps", type=int, default=10000, help="simulated comparisons per cell")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per interval")
    parser.add_argument("--dists", nargs="+", default=["normal", "skewed"], help="normal, skewed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    se = 1.96 * math.sqrt(0.95 * 0.05 / args.reps)
    print(f"coverage of nominal 95% intervals of the mean paired difference ({args.reps} simulated")
    print(f"comparisons per cell, ±{100 * se:.1f} points at 95%; bootstrap: {args.resamples} resamples)\n")
    print(f"{'distribution':<12} {'seeds':>5} {'t (default)':>12} {'BCa':>8} {'percentile':>11}")
    for dist in args.dists:
        for n in args.seeds:
            d = draw(dist, np.random.default_rng([args.seed, n]), (args.reps, n))
            t = t_coverage(d)
            bca = bootstrap_coverage(d, "BCa", args.resamples, args.seed) if n >= 3 else math.nan
            pct = bootstrap_coverage(d, "percentile", args.resamples, args.seed)
            print(f"{dist:<12} {n:>5} {100 * t:>11.1f}% {100 * bca:>7.1f}% {100 * pct:>10.1f}%", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
