"""Tuning curves from opda: the unbiased estimator against brute force, the exact bands' coverage,
the crossover interval."""

import itertools

import numpy as np
import pytest

from bench.report.curves import expected_max
from bench.report.tuning_curves import (
    PAIR_CONFIDENCE,
    crossover,
    curves_table,
    method_crossover,
    tuning_curve,
)

LISTS = ([30.0], [20.0, 70.0], [50.0, 10.0, 40.0], [30.0, 35.0, 90.0, 10.0], [60.0, 20.0, 25.0, 61.0, 45.0])


@pytest.mark.parametrize("values", LISTS)
def test_expected_is_the_mean_best_over_every_k_subset(values):
    """Unbiased: the mean of max over all C(N, k) subsets of the trials (no trial counted twice)."""
    curve = tuning_curve([values])
    for k in range(1, len(values) + 1):
        brute = np.mean([max(s) for s in itertools.combinations(values, k)])
        assert curve.expected[k - 1] == pytest.approx(brute, abs=1e-9)
    assert curve.expected[-1] == max(values)  # every N-subset is the study itself
    np.testing.assert_allclose(curve.dodge, expected_max(values))  # the old estimator, kept beside


def test_the_old_estimator_is_biased_low_where_the_new_is_not():
    """Dodge's curve (draws with replacement) stays below the unbiased one for 1 < k ≤ N and never
    reaches the best trial: what the demo's curves show (docs)."""
    curve = tuning_curve([[30.0, 35.0, 90.0, 10.0]])
    assert curve.expected[0] == curve.dodge[0]
    assert np.all(curve.dodge[1:] < curve.expected[1:]) and curve.dodge[-1] < 90.0


def test_exact_bands_cover_the_true_median_curve_simultaneously():
    """Scores from a known continuous distribution (normal, 40 ± 3): the true median best of k is
    F⁻¹(0.5^(1/k)). The 95% band must hold for every k at once in ≥ 95% of studies (tolerance: 3
    binomial sd over 120 studies); a pointwise band of the same width would not."""
    from scipy import stats

    n, reps = 10, 120
    rng = np.random.default_rng(1)
    k = np.arange(1, n + 1)
    truth = stats.norm(40, 3).ppf(0.5 ** (1 / k))
    covered = 0
    for r in range(reps):
        c = tuning_curve([rng.normal(40, 3, n)], seed=r)
        low = np.where(np.isnan(c.low), -np.inf, c.low)
        high = np.where(np.isnan(c.high), np.inf, c.high)
        assert np.all(low <= c.median) and np.all(c.median <= high)
        covered += bool(np.all((low <= truth) & (truth <= high)))
    assert covered / reps >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)


def test_unbounded_ends_are_nan_not_the_support():
    """Four trials cannot bound the median best of 4 from above: NaN, never a fake 100."""
    c = tuning_curve([[40.0, 41.0, 42.0, 43.0]])
    assert np.isnan(c.high[-1]) and not np.any(c.high == 100.0) and not np.any(c.low == 0.0)


def test_pruned_trials_enter_at_the_floor_and_repeats_pool():
    a = tuning_curve([[40.0, None, 42.0]])
    np.testing.assert_allclose(a.expected, tuning_curve([[40.0, 40.0, 42.0]]).expected)
    pooled = tuning_curve([[40.0, 41.0, 42.0], [43.0, 44.0]])
    assert pooled.n_trials == 2 and pooled.n_pooled == 5  # k up to the shortest study
    assert tuning_curve([[None, None]]) is None and tuning_curve([]) is None


def test_crossover_interval_holds_the_point_and_follows_the_bands():
    rng = np.random.default_rng(0)
    base = list(rng.normal(40, 2, 40))
    method = list(rng.normal(42, 2, 40))
    c = method_crossover([base], [method])
    assert c.n == 40 and c.k_low is not None
    if c.k is not None:  # the point lies inside its interval
        assert c.k_low <= c.k and (c.k_high is None or c.k <= c.k_high)
    b, m = tuning_curve([base], PAIR_CONFIDENCE), tuning_curve([method], PAIR_CONFIDENCE)
    # k_low: the first k where the baseline's upper band reaches the method's lower band at N
    high = np.where(np.isnan(b.high), np.inf, b.high)
    assert high[c.k_low - 1] >= m.low[-1] and (c.k_low == 1 or high[c.k_low - 2] < m.low[-1])
    # a method far above every baseline trial: not within N, however wide the bands
    far = crossover(b, tuning_curve([[x + 30 for x in method]], PAIR_CONFIDENCE))
    assert far.k is None and far.k_high is None and far.label() == "not within 40"
    assert far.interval().endswith("not within 40]")
    # the baseline against itself: crossover at the first k that reaches its own median best of N
    own = crossover(b, b)
    assert own.k == int(np.flatnonzero(b.median >= b.median[-1])[0]) + 1


def test_curves_table_has_every_estimator_per_k():
    curves = {
        ("synthetic", "tiny", "big", "trials3"): {
            "baseline": [[40.0, 41.0, 42.0]],
            "kd": [[41.0, 45.0, 43.0]],
        }
    }
    rows = curves_table(curves)
    assert [(r["method"], r["k"]) for r in rows] == [(m, k) for m in ("baseline", "kd") for k in (1, 2, 3)]
    kd = [r for r in rows if r["method"] == "kd"]
    assert kd[-1]["expected_unbiased"] == 45.0 and kd[0]["crossover_trials"].startswith("not within 3")
    assert all(r["crossover_trials"] == "" for r in rows if r["method"] == "baseline")
