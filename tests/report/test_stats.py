"""The statistics of the report, checked by hand and by small simulations."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from bench.report.stats import holm, min_detectable_effect, paired_delta, undertuned, undertuned_tail

BASE = {0: 70.0, 1: 71.0, 2: 72.0}


def _pairs(d):
    return {i: 70.0 + x for i, x in enumerate(d)}, {i: 70.0 for i in range(len(d))}


def test_fault_percentile_bootstrap_of_three_seeds_was_min_max():
    # As it was: the percentile bootstrap of 3 differences {1, 2, 0.5} puts 1/27 on each extreme
    # mean, so its 2.5% / 97.5% percentiles are exactly min and max ...
    d = np.array([1.0, 2.0, 0.5])
    means = sorted(np.mean(t) for t in itertools.product(d, repeat=3))
    assert (means[0], means[-1]) == (0.5, 2.0)
    old = stats.bootstrap((d,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(0))
    assert (old.confidence_interval.low, old.confidence_interval.high) == (0.5, 2.0)
    # ... and [min, max] of 3 draws covers the centre of a symmetric distribution with probability
    # 1 − 2·(1/2)³ = 75%. Now: the paired t-interval, by hand.
    r = paired_delta({0: 71.0, 1: 73.0, 2: 72.5}, BASE)
    half = stats.t.ppf(0.975, 2) * math.sqrt(7 / 12) / math.sqrt(3)
    assert (r.ci_low, r.ci_high) == pytest.approx((7 / 6 - half, 7 / 6 + half), rel=1e-12)
    assert r.p_value == pytest.approx(1 - math.sqrt(7) / 3, rel=1e-12)


def test_fault_interval_excluded_zero_while_p_was_above_005():
    d = [0.6, -0.24, 1.02, 0.81, 1.04]  # p = 0.0517
    old = stats.bootstrap(
        (np.array(d),), np.mean, n_resamples=10000, method="percentile", rng=np.random.default_rng(0)
    )
    assert old.confidence_interval.low > 0  # as it was: "significant" by the interval only
    r = paired_delta(*_pairs(d))
    assert r.p_value == pytest.approx(0.0517, abs=1e-4) and r.ci_low < 0 < r.ci_high


def test_the_t_interval_agrees_with_the_p_value():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 12))
        r = paired_delta(*_pairs(rng.normal(0.5, 1.0, n)))
        assert (r.p_value < 0.05) == (r.ci_low > 0 or r.ci_high < 0)


def test_t_interval_coverage_by_simulation():
    """Nominal 95% at 3 seeds (vectorised: 20,000 samples; Monte Carlo sd 0.15%)."""
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 2.0, size=(20000, 3))
    half = stats.t.ppf(0.975, 2) * d.std(axis=1, ddof=1) / math.sqrt(3)
    covered = np.abs(d.mean(axis=1) - 1.0) <= half
    assert covered.mean() == pytest.approx(0.95, abs=0.006)
    minmax = (d.min(axis=1) <= 1.0) & (d.max(axis=1) >= 1.0)  # the old interval
    assert minmax.mean() == pytest.approx(0.75, abs=0.01)


def test_bca_from_ten_seeds():
    rng = np.random.default_rng(1)
    r = paired_delta(*_pairs(rng.normal(1.0, 1.0, 10)), ci="bca", n_resamples=5000)
    t = paired_delta(*_pairs(rng.normal(1.0, 1.0, 10)))
    assert r.ci_low < r.delta < r.ci_high and t.ci_low < t.delta < t.ci_high
    with pytest.raises(ValueError, match="at least 10"):
        paired_delta(*_pairs([1.0, 2.0, 3.0]), ci="bca")


def test_constant_delta():
    r = paired_delta(*_pairs([1.0, 1.0, 1.0]))
    assert r.constant and r.delta == 1.0 and r.p_value == 0.25  # 2 of 2³ sign patterns reach |Δ|
    assert math.isnan(r.ci_low) and math.isnan(r.ci_high) and math.isnan(r.mde)
    assert paired_delta(*_pairs([1.0] * 10)).p_value == pytest.approx(2 / 2**10)
    zero = paired_delta(*_pairs([0.0, 0.0]))
    assert zero.constant and zero.p_value == 1.0


def test_degenerate_pairings():
    assert paired_delta({0: 1.0, 5: 9.0}, {0: 0.0, 1: 4.0}).n == 1  # only seed 0 is shared
    assert math.isnan(paired_delta({}, {0: 1.0}).delta)


def test_holm_by_hand():
    # sorted p: 0.01, 0.03, 0.04 → 3·0.01 = 0.03; max(0.03, 2·0.03) = 0.06; max(0.06, 1·0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.02, math.nan, 0.01])  # NaN is not a test: m = 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert holm([]) == []


def test_minimum_detectable_effect():
    assert min_detectable_effect(10) == pytest.approx(0.9960, abs=1e-4)  # Cohen's d, one-sample t
    assert min_detectable_effect(1000) == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / math.sqrt(1000), rel=2e-3
    )
    # power at the MDE is 0.8, by simulation of paired t-tests with 5 seeds
    n, rng = 5, np.random.default_rng(0)
    d = rng.normal(min_detectable_effect(n), 1.0, size=(20000, n))
    p = stats.ttest_1samp(d, 0.0, axis=1).pvalue
    assert (p < 0.05).mean() == pytest.approx(0.8, abs=0.01)
    r = paired_delta(*_pairs([0.5, 1.5, 1.0]))
    assert r.mde == pytest.approx(min_detectable_effect(3) * 0.5)  # in points: × the seed sd


@pytest.mark.parametrize(("n", "tail"), [(6, 1), (20, 4), (100, 20)])
def test_undertuned_looks_at_the_last_fifth(n, tail):
    assert undertuned_tail(n) == tail
    flat = [0.5] * n
    late = flat[: n - tail] + [0.6] * tail  # improved in the last ⌊N/5⌋ trials
    early = flat[: n - tail - 1] + [0.6] * (tail + 1)  # improved one trial before them
    assert undertuned(late) and not undertuned(early) and not undertuned(flat)
    assert not undertuned(late, min_gain=0.1)  # within the tolerated gain
    assert undertuned(late, min_gain=0.099)


def test_fault_undertuned_rounded_its_tail_up():
    # 6 trials, best improved at trial 5 of 6: "the last 20%" used to be the last 2 trials (33%)
    curve = [0.3, 0.4, 0.4, 0.4, 0.5, 0.5]
    assert not undertuned(curve)
    assert undertuned([None, 0.2]) and not undertuned([None, None])


def test_the_coverage_simulation_runs(capsys):
    from bench.report.simulate import main

    assert main(["--reps", "200", "--resamples", "200", "--seeds", "3", "--dists", "normal"]) == 0
    out = capsys.readouterr().out
    assert "t (default)" in out and "normal" in out
