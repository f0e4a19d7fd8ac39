"""Out-of-fold probabilities: the softmax temperature fitted on a sample of a large training set."""

from __future__ import annotations

import numpy as np

from dataaudit.features import confident_learning
from dataaudit.features.confident_learning import _temperature_rows, out_of_fold_probabilities


def blobs(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, 24))
    return (centres[y] + 1.2 * rng.standard_normal((n, 24))).astype(np.float32), y


def test_the_temperature_sample_is_every_row_up_to_the_limit_then_a_fixed_sample():
    assert np.array_equal(_temperature_rows(1_000), np.arange(1_000))
    many = _temperature_rows(confident_learning.TEMPERATURE_FIT_ROWS * 3)
    assert len(many) == confident_learning.TEMPERATURE_FIT_ROWS and np.all(np.diff(many) > 0)
    assert np.array_equal(many, _temperature_rows(confident_learning.TEMPERATURE_FIT_ROWS * 3))


def test_a_sampled_temperature_fit_gives_the_probabilities_of_the_full_fit(monkeypatch):
    x, y = blobs(12_000, 6, seed=3)
    full = out_of_fold_probabilities(x, y, 6, folds=3, seed=0)
    monkeypatch.setattr(confident_learning, "TEMPERATURE_FIT_ROWS", 2_000)
    sampled = out_of_fold_probabilities(x, y, 6, folds=3, seed=0)
    np.testing.assert_allclose(sampled, full, rtol=1e-9, atol=1e-12)
