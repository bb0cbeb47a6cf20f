"""How much tuning is enough: expected best hold-out score after k trials, and the crossover budget.

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
    values: Sequence[float], n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap band of :func:`expected_max` (the N trials resampled with replacement)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v, v
    rng = np.random.default_rng(seed)
    resampled = np.sort(rng.choice(v, size=(n_resamples, v.size), replace=True), axis=1)
    curves = resampled @ _weights(v.size)
    alpha = (1 - level) / 2
    return np.quantile(curves, alpha, axis=0), np.quantile(curves, 1 - alpha, axis=0)


def crossover(baseline: Sequence[float], target: float) -> int | None:
    """Smallest k at which the baseline's expected best reaches ``target``; None if not within N."""
    hit = np.nonzero(np.asarray(baseline) >= target - 1e-12)[0]
    return int(hit[0]) + 1 if hit.size else None


def crossover_label(k: int | None, n: int) -> str:
    return str(k) if k is not None else f"not within {n}"
