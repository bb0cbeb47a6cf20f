"""Dodge et al.'s expected best hold-out score after k trials (the report's estimator before
:mod:`bench.report.tuning_curves`, which now draws the budget curves and the crossover; kept for the
``expected_dodge`` column that shows how the two differ).

Dodge et al. (EMNLP 2019, "Show your work") estimate, from one study's N trial scores, the expected
best score of a study of k ≤ N trials: with the scores sorted, v(1) ≤ … ≤ v(N), and k draws with
replacement,

    E[max_k] = Σ_i v(i) · [(i/N)^k − ((i−1)/N)^k],

since (i/N)^k is the probability that all k draws fall among the i smallest. The estimate is exact
(for the empirical distribution of the trials) when the trials are i.i.d. draws, i.e. random search
(``tune.sampler=random``). Under TPE later trials depend on earlier ones (they concentrate where
earlier trials scored well), so the curve is an approximation: it describes "k trials drawn from the
configurations this study visited", not "a TPE study stopped after k trials" (which is the
study's own best-so-far curve, also shown by the report).

Counted trials without a final hold-out score (pruned, diverged) are never selectable; they enter
at the study's lowest completed score, so they can only lower the expected best, never raise it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def scores(values: Sequence[float | None]) -> np.ndarray:
    """A study's counted trials' hold-out scores, None (pruned, diverged) at the lowest completed one."""
    done = [v for v in values if v is not None and math.isfinite(v)]
    if not done:
        return np.array([])
    floor = min(done)
    return np.array([floor if v is None or not math.isfinite(v) else v for v in values], dtype=float)


def _weights(n: int) -> np.ndarray:
    """W[i, k−1] = P(the largest of k draws is the (i+1)-th smallest of n): (i+1)^k/n^k − i^k/n^k."""
    i = np.arange(1, n + 1, dtype=float)[:, None] / n
    k = np.arange(1, n + 1, dtype=float)[None, :]
    return i**k - (i - 1 / n) ** k


def expected_max(values: Sequence[float]) -> np.ndarray:
    """E[max of k draws with replacement], k = 1 … N, from N scores (Dodge et al. 2019)."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        return v
    return v @ _weights(v.size)


def expected_max_band(
    studies: Sequence[Sequence[float]], n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap band of :func:`mean_expected_max` over one or more studies (repeats).

    Each study's trials are resampled with replacement, independently; the band holds the middle
    ``level`` of the resampled (repeat-averaged) curves, each cut to the shortest study.
    """
    studies = [np.asarray(scores(v), dtype=float) for v in studies if v is not None and len(v)]
    studies = [v for v in studies if v.size]
    if not studies:
        return np.array([]), np.array([])
    rng = np.random.default_rng(seed)
    n = min(v.size for v in studies)
    total = np.zeros((n_resamples, n))
    for v in studies:
        resampled = np.sort(rng.choice(v, size=(n_resamples, v.size), replace=True), axis=1)
        total += (resampled @ _weights(v.size))[:, :n]
    curves = total / len(studies)
    alpha = (1 - level) / 2
    return np.quantile(curves, alpha, axis=0), np.quantile(curves, 1 - alpha, axis=0)


def mean_expected_max(studies: Sequence[Sequence[float | None]]) -> np.ndarray:
    """:func:`expected_max` averaged over independent studies (repeats), each cut to the shortest."""
    curves = [expected_max(scores(v)) for v in studies if v]
    curves = [c for c in curves if c.size]
    if not curves:
        return np.array([])
    n = min(c.size for c in curves)
    return np.mean([c[:n] for c in curves], axis=0)


def crossover(baseline: Sequence[float], target: float) -> int | None:
    """Smallest k at which the baseline's expected best reaches ``target``; None if not within N."""
    hit = np.nonzero(np.asarray(baseline) >= target - 1e-12)[0]
    return int(hit[0]) + 1 if hit.size else None


def crossover_label(k: int | None, n: int) -> str:
    return str(k) if k is not None else f"not within {n}"
