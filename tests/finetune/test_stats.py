import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.finetune import stats


def test_clear_difference_is_confirmed_and_its_reverse_is_not():
    high, low = np.ones(50), np.zeros(50)
    interval = stats.difference(high, low)
    assert interval.estimate == 1.0 and interval.low == 1.0
    assert stats.verdict(interval) == stats.CONFIRMED
    assert stats.verdict(stats.difference(low, high)) == stats.NOT_CONFIRMED
    assert stats.verdict(stats.difference(low, high), expect_positive=False) == stats.CONFIRMED


def test_noise_and_tiny_samples_are_inconclusive():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.02, 1, 40), rng.normal(0.0, 1, 40)
    assert stats.verdict(stats.difference(a, b)) in (stats.INCONCLUSIVE, stats.NOT_CONFIRMED)
    assert stats.verdict(stats.difference([1.0, 1.0], [0.0, 0.0])) == stats.INCONCLUSIVE
    assert stats.verdict(stats.difference([], [1.0] * 10)) == stats.INCONCLUSIVE


def test_paired_difference_ignores_rows_missing_on_either_side():
    a = np.array([1.0, 1.0, np.nan, 1.0, 1.0, 1.0])
    b = np.array([0.0, np.nan, 0.0, 0.0, 0.0, 0.0])
    interval = stats.paired_difference(a, b)
    assert interval.n_a == 4 and interval.estimate == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=30), st.lists(st.floats(-5, 5), min_size=1, max_size=30),
       st.integers(0, 1000))
def test_interval_contains_the_estimate_and_is_seeded(a, b, seed):
    first = stats.difference(a, b, seed=seed, n_resamples=200)
    assert first.low - 1e-9 <= first.estimate <= first.high + 1e-9 or len(a) == 1 or len(b) == 1
    assert first == stats.difference(a, b, seed=seed, n_resamples=200)
