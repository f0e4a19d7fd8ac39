"""The centroid view of label-aware coverage: Mahalanobis distance to the nearest class centroid,
calibrated out of fold on training, and its Fisher combination with the other scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.coverage import CoverageAnalysis
from dataaudit.coverage.labels import (
    CentroidCoverageScorer,
    LabelCoverageScorer,
    _model_from,
    _moments,
    _nearest_centroid_statistic,
    _whitened_centroids,
    fisher_score,
)
from tests.coverage.test_coverage_labels import analyse, sibling_world, unit

DIM = 24


def test_off_class_prompts_score_low_and_covered_ones_are_calibrated():
    train, labels, covered, _ = sibling_world()
    rng = np.random.default_rng(1)
    off_class = unit(rng.normal(size=(30, DIM)))  # random directions: near no class centroid
    scorer = CentroidCoverageScorer(seed=0).fit(train, labels)
    assert scorer.classes_ == [f"intent_{c}" for c in range(6)]
    far = scorer.score(off_class)
    usual = scorer.score(covered)
    assert np.median(far) < 0.05 < np.median(usual)
    assert (usual < 0.05).mean() <= 0.15


def test_own_scores_are_out_of_fold_percentiles_and_unlabelled_rows_get_none():
    train, labels, _, _ = sibling_world()
    labels = list(labels)
    labels[:4] = [None] * 4
    scorer = CentroidCoverageScorer(seed=0).fit(train, labels)
    assert np.isnan(scorer.own_score_[:4]).all()
    own = scorer.own_score_[4:]
    assert ((own > 0) & (own <= 1)).all()
    assert (own <= 0.1).mean() <= 0.1 + 1e-9
    # out of fold: a row's own distance is larger than if its class centroid had seen it
    in_sample = _nearest_centroid_statistic(scorer.model_, train[4:])
    assert np.median(in_sample) > np.quantile(scorer.calibration_, 0.5)


def test_one_class_or_too_few_rows_is_not_calibrated():
    train, _, covered, _ = sibling_world()
    assert not CentroidCoverageScorer().fit(train, ["only"] * len(train)).is_calibrated
    assert np.isnan(CentroidCoverageScorer().fit(train[:1], ["a"]).score(covered)).all()


def test_the_statistic_is_the_mahalanobis_distance_to_the_nearest_centroid():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=200)
    queries = rng.normal(size=(7, 5)).astype(np.float32)
    shrinkage = 0.3
    centroids = np.stack([x[y == c].mean(axis=0) for c in range(4)]).astype(np.float64)
    residual = x - centroids[y]
    covariance = residual.T.astype(np.float64) @ residual / len(x)
    covariance = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / 5 * np.eye(5)
    inverse = np.linalg.inv(covariance)
    expected = np.array([min((q - c) @ inverse @ (q - c) for c in centroids) for q in queries.astype(np.float64)])
    got = -_nearest_centroid_statistic(_whitened_centroids(x, y, 4, shrinkage), queries)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_folds_model_from_summed_moments_equals_one_fitted_on_the_other_rows():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=120)
    fold = np.arange(120) % 4 == 0
    whole, mine = _moments(x, y, 3), _moments(x[fold], y[fold], 3)
    subtracted = _model_from(*[a - b for a, b in zip(whole, mine)], 0.4)
    direct = _whitened_centroids(x[~fold], y[~fold], 3, 0.4)
    queries = rng.normal(size=(9, 6)).astype(np.float32)
    np.testing.assert_allclose(_nearest_centroid_statistic(subtracted, queries),
                               _nearest_centroid_statistic(direct, queries), rtol=1e-8)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 1), st.floats(0.01, 1), st.floats(0.01, 1)), min_size=2, max_size=40),
       st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=20))
def test_fisher_score_is_calibrated_and_monotone(own, queries):
    own, queries = np.array(own).T, np.array(queries).T
    weights = [1.0, 0.5, 0.5]
    combined = fisher_score(list(own), list(queries), weights)
    assert ((combined >= 0) & (combined <= 1)).all()
    own_combined = fisher_score(list(own), list(own), weights)
    for q in (0.1, 0.5):
        assert (own_combined <= q).mean() <= q + 1e-9
    for view in range(3):
        lowered = queries.copy()
        lowered[view] /= 2
        assert (fisher_score(list(own), list(lowered), weights) <= combined).all()


def test_fisher_score_skips_rows_no_view_speaks_for():
    own = [np.array([0.2, 0.4, np.nan, 0.8]), np.array([0.5, np.nan, np.nan, 0.5])]
    queries = [np.array([np.nan, 0.3]), np.array([np.nan, np.nan])]
    combined = fisher_score(own, queries, [1.0, 1.0])
    assert np.isnan(combined[0]) and 0 <= combined[1] <= 1


def test_label_views_in_the_analysis():
    from dataaudit.errors import UsageError

    neighbours, _ = analyse(label_view="neighbours")
    centroids, _ = analyse(label_view="centroids")
    both, _ = analyse()
    assert both.summary["params"]["label_view"] == "both"
    assert "centroid" in both.summary["threshold"]["description"]
    assert "centroid" not in neighbours.summary["threshold"]["description"]
    # the neighbours view alone is the kNN agreement score, as before the centroid view existed
    train, labels, covered, missing = sibling_world()
    expected = LabelCoverageScorer(seed=0).fit(train, labels).score(np.vstack([covered, missing])).label_gap_score
    np.testing.assert_allclose(neighbours.coverage.get_column("label_gap_score").to_numpy(), expected)
    for result in (centroids, both):
        values = result.coverage.get_column("label_gap_score")
        assert values.null_count() == 0 and values.min() >= 0 and values.max() <= 1
    assert not np.allclose(centroids.coverage.get_column("label_gap_score").to_numpy(), expected)
    for bad in ({"label_view": "softmax"}, {"centroid_shrinkage": 0.0}, {"centroid_shrinkage": 1.5}):
        with pytest.raises((UsageError, ValueError, TypeError)):
            CoverageAnalysis(**bad)
