"""Drift: cross-validated train-vs-production AUC."""

from __future__ import annotations

import numpy as np

from dataaudit.coverage.drift import AUC_SCALE, drift_auc, interpret_auc


def mixture(n: int, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows = centres[rng.integers(len(centres), size=n)] + 0.5 * rng.normal(size=(n, centres.shape[1]))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_same_distribution_is_indistinguishable_and_a_shift_is_obvious():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 32))
    train = mixture(600, centres, rng)
    same = drift_auc(train, mixture(300, centres, rng), seed=0)
    shifted = drift_auc(train, mixture(300, centres + 0.8 * rng.normal(size=32), rng), seed=0)
    assert abs(same.auc - 0.5) < 0.1 and same.interpretation == interpret_auc(same.auc)
    assert shifted.auc > 0.9 and "clearly different" in shifted.interpretation
    assert same.folds == 5 and same.as_dict()["scale"] == AUC_SCALE


def test_subsampling_bounds_the_rows_used_and_is_seeded():
    rng = np.random.default_rng(1)
    train, production = rng.normal(size=(500, 8)), rng.normal(size=(80, 8)) + 0.3
    first = drift_auc(train, production, max_rows=100, seed=4)
    assert (first.train_rows, first.production_rows) == (100, 80)
    assert drift_auc(train, production, max_rows=100, seed=4).auc == first.auc


def test_too_few_rows_is_reported_not_raised():
    estimate = drift_auc(np.ones((1, 4)), np.ones((5, 4)))
    assert estimate.auc is None and "not computed" in estimate.interpretation
    assert drift_auc(np.ones((3, 4)), np.zeros((0, 4))).auc is None
    small = drift_auc(np.eye(4)[:3], np.eye(4)[1:])
    assert small.folds == 3 and 0 <= small.auc <= 1


def test_interpretation_scale():
    assert "indistinguishable" in interpret_auc(0.52)
    assert "slight" in interpret_auc(0.65)
    assert "moderate" in interpret_auc(0.75)
    assert "clearly different" in interpret_auc(0.85)
