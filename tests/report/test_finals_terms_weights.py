"""The finals' equal-terms check on encoder weights as the report's table hands them over."""

import math

from bench.report.finals_terms import comparable, differences


def _final(seed, sha, weights=None):
    return {
        "seed": seed,
        "config": {"student": {"encoder_weights": weights}, "train": {"iterations": 20}},
        "weights_sha256": sha,
        "threads": 1,
        "device_name": "cpu",
    }


def test_missing_weight_digests_that_pandas_turned_into_nan_are_not_a_difference():
    """make report on a fresh clone flagged 'finals differ: student.encoder_weights nan vs the
    baseline's nan' when another study of the same report used a weights file (the column mixed a
    SHA-256 with None, and pandas gave NaN): NaN is not equal to itself."""
    kd, base = [_final(0, math.nan)], [_final(0, math.nan)]
    assert differences(kd, base, []) == ""
    assert comparable(kd[0], [])["student.encoder_weights"] is None


def test_weights_that_differ_by_content_are_still_a_difference():
    kd, base = [_final(0, "a" * 64, "/w/a.safetensors")], [_final(0, math.nan)]
    assert "student.encoder_weights" in differences(kd, base, [])
    same = [_final(0, "a" * 64, "/elsewhere/a.safetensors")]
    assert differences(kd, same, []) == ""  # the same file under another path
