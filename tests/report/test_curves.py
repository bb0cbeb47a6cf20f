"""Budget curves: the expected-max estimator against brute force, its band, and the crossover."""

import itertools

import numpy as np
import pytest

from bench.report.curves import (
    crossover,
    crossover_label,
    expected_max,
    expected_max_band,
    mean_expected_max,
    scores,
)

LISTS = ([0.3], [0.2, 0.7], [0.5, 0.1, 0.4], [0.3, 0.3, 0.9, 0.1], [0.6, 0.2, 0.2, 0.6, 0.45])


@pytest.mark.parametrize("values", LISTS)
def test_expected_max_equals_brute_force_over_all_draws(values):
    """Every ordered k-tuple of draws with replacement, equally likely: the mean of their maxima."""
    n = len(values)
    for k in range(1, n + 1):
        draws = list(itertools.product(values, repeat=k))
        assert expected_max(values)[k - 1] == pytest.approx(np.mean([max(d) for d in draws]), abs=1e-12)


@pytest.mark.parametrize("values", LISTS[1:])
def test_the_estimate_depends_on_the_values_not_their_order(values):
    for order in itertools.permutations(values):
        np.testing.assert_allclose(expected_max(list(order)), expected_max(values), atol=1e-15)


def test_curve_runs_from_the_mean_to_below_the_maximum():
    v = [0.1, 0.5, 0.3, 0.2]
    curve = expected_max(v)
    assert curve[0] == pytest.approx(np.mean(v)) and curve[-1] < max(v)
    assert np.all(np.diff(curve) > 0)


def test_bootstrap_band_holds_the_curve_and_is_zero_for_constant_scores():
    v = [0.1, 0.5, 0.3, 0.2, 0.45, 0.35]
    low, high = expected_max_band([v], n_resamples=4000)
    curve = expected_max(v)
    assert np.all(low <= curve + 1e-12) and np.all(curve <= high + 1e-12) and np.all(high > low)
    low, high = expected_max_band([[0.4] * 5])
    np.testing.assert_allclose(low, 0.4) and np.testing.assert_allclose(high, 0.4)


def test_crossover():
    base, method = [0.1, 0.5], [0.3, 0.4]
    # the method's expected best at N = 2: 0.3·1/4 + 0.4·3/4 = 0.375; the baseline's: 0.3, then 0.4
    target = expected_max(method)[-1]
    assert target == pytest.approx(0.375)
    assert crossover(expected_max(base), target) == 2
    assert crossover(expected_max(base), 0.3) == 1  # reached at once (equality counts)
    assert crossover(expected_max(base), 0.41) is None
    assert crossover_label(None, 2) == "not within 2" and crossover_label(2, 2) == "2"


def test_unscored_trials_enter_at_the_lowest_score():
    np.testing.assert_allclose(scores([0.4, None, 0.2, float("nan")]), [0.4, 0.2, 0.2, 0.2])
    assert scores([None, None]).size == 0 and expected_max([]).size == 0


def test_repeats_average_their_curves():
    a, b = [0.1, 0.5, 0.3], [0.2, 0.6, 0.4, 0.9]
    np.testing.assert_allclose(mean_expected_max([a, b]), (expected_max(a) + expected_max(b)[:3]) / 2)
    low, high = expected_max_band([a, b])
    assert low.size == high.size == 3 and np.all(low <= high)
