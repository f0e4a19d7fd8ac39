"""Density-aware, self-calibrated coverage scores."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dataaudit.coverage.scoring import CoverageScorer, percentile_of


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def blob(centre: np.ndarray, n: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    return unit(centre + spread * rng.normal(size=(n, len(centre))))


finite = st.floats(-10, 10, allow_nan=False, width=64)


@given(calibration=arrays(np.float64, st.integers(1, 40), elements=finite), values=arrays(np.float64, st.integers(0, 40), elements=finite))
def test_percentile_is_a_monotone_share_in_unit_interval(calibration, values):
    scores = percentile_of(calibration, values)
    assert np.all((scores >= 0) & (scores <= 1))
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)
    np.testing.assert_allclose(scores, [(calibration <= v).mean() for v in values])


def test_percentile_without_calibration_is_nan():
    assert np.isnan(percentile_of(np.array([]), np.array([0.3]))).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), m=st.integers(1, 20))
def test_gap_score_is_in_unit_interval_and_monotone_in_the_statistic(seed, n, m):
    rng = np.random.default_rng(seed)
    reference = unit(rng.normal(size=(n, 6)))
    scores = CoverageScorer(k=3, density_k=4).fit(reference).score(unit(rng.normal(size=(m, 6))))
    assert np.all((scores.gap_score >= 0) & (scores.gap_score <= 1))
    order = np.argsort(scores.statistic, kind="stable")
    assert np.all(np.diff(scores.gap_score[order]) >= 0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(3, 8))
def test_gap_score_rises_as_a_query_moves_onto_a_training_row(seed, steps):
    """Same neighbourhood, higher similarity: never less covered."""
    rng = np.random.default_rng(seed)
    reference = blob(unit(rng.normal(size=(1, 8)))[0], 30, 0.3, rng)
    scorer = CoverageScorer(k=1, density_k=1).fit(reference)
    target, away = reference[0].astype(np.float64), rng.normal(size=8)
    away -= (away @ target) * target  # orthogonal, so the path's nearest row stays ``target``
    away /= np.linalg.norm(away)
    path = unit([np.cos(a) * target + np.sin(a) * away for a in np.linspace(np.pi / 2 * 0.9, 0, steps)])
    scores = scorer.score(path)
    keeps_target = scores.nearest == 0
    assert keeps_target[-1]
    assert np.all(np.diff(scores.similarity[keeps_target]) >= -1e-6)
    assert np.all(np.diff(scores.gap_score[keeps_target]) >= 0)


def test_training_rows_themselves_score_like_training_and_strangers_score_zero():
    rng = np.random.default_rng(0)
    first, second = unit(rng.normal(size=(2, 16)))
    reference = np.vstack([blob(first, 40, 0.1, rng), blob(second, 40, 0.1, rng)])
    scorer = CoverageScorer(k=5, density_k=8).fit(reference)
    inside = scorer.score(blob(first, 20, 0.1, rng))
    stranger = scorer.score(unit(rng.normal(size=(5, 16))))
    assert np.median(inside.gap_score) > 0.2
    assert np.all(stranger.gap_score == 0)
    assert scorer.statistic_at(0.05) is not None


def test_a_dense_region_demands_more_similarity_than_a_sparse_one():
    """Same cosine to the nearest rows, but the dense topic's rows are far closer to each other."""
    rng = np.random.default_rng(1)
    dense_centre, sparse_centre = unit(rng.normal(size=(2, 32)))
    dense = blob(dense_centre, 50, 0.05, rng)
    sparse = blob(sparse_centre, 50, 0.35, rng)
    scorer = CoverageScorer(k=5, density_k=10).fit(np.vstack([dense, sparse]))
    dense_query = blob(dense_centre, 20, 0.25, rng)
    sparse_query = blob(sparse_centre, 20, 0.25, rng)
    dense_scores, sparse_scores = scorer.score(dense_query), scorer.score(sparse_query)
    # Dense-topic queries are *more* similar to their nearest training rows ...
    assert np.median(dense_scores.similarity) > np.median(sparse_scores.similarity)
    # ... yet less covered, because they sit far outside an otherwise tight crowd.
    assert np.median(dense_scores.gap_score) < np.median(sparse_scores.gap_score)


def test_tiny_references_never_fail():
    rng = np.random.default_rng(2)
    queries = unit(rng.normal(size=(4, 8)))
    empty = CoverageScorer().fit(np.zeros((0, 8), dtype=np.float32)).score(queries)
    assert (empty.nearest == -1).all() and np.isnan(empty.similarity).all() and np.isnan(empty.gap_score).all()
    single = CoverageScorer().fit(unit(rng.normal(size=(1, 8))))
    assert not single.is_calibrated and single.statistic_at(0.05) is None
    scores = single.score(queries)
    assert (scores.nearest == 0).all() and np.isfinite(scores.similarity).all() and np.isnan(scores.gap_score).all()
    pair = CoverageScorer().fit(unit(rng.normal(size=(2, 8)))).score(queries)
    assert np.all((pair.gap_score >= 0) & (pair.gap_score <= 1))
    nothing = CoverageScorer().fit(unit(rng.normal(size=(3, 8)))).score(np.zeros((0, 8), dtype=np.float32))
    assert nothing.gap_score.shape == (0,)


def test_reuses_a_training_graph_with_enough_neighbours():
    from dataaudit.neighbors import build_knn

    rng = np.random.default_rng(3)
    reference = unit(rng.normal(size=(60, 8)))
    queries = unit(rng.normal(size=(10, 8)))
    own = CoverageScorer(k=4, density_k=6).fit(reference).score(queries)
    reused = CoverageScorer(k=4, density_k=6).fit(reference, knn=build_knn(reference, k=10)).score(queries)
    too_small = CoverageScorer(k=4, density_k=6).fit(reference, knn=build_knn(reference, k=2)).score(queries)
    np.testing.assert_allclose(own.gap_score, reused.gap_score)
    np.testing.assert_allclose(own.gap_score, too_small.gap_score)


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.3))
@settings(max_examples=25, deadline=None)
def test_a_graph_without_some_rows_is_the_exact_graph_of_the_rest(seed, share):
    """Read off an exact graph, the rest's neighbours are what an exact build over the rest gives."""
    from dataaudit.coverage.scoring import graph_without
    from dataaudit.neighbors import build_knn

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((120, 8)).astype(np.float32)
    removed = rng.random(120) < share
    derived = graph_without(build_knn(vectors, k=30), removed, width=10)
    if derived is None:  # some kept row lost too many neighbours: the caller builds instead
        return
    rebuilt = build_knn(vectors[~removed], k=10)
    np.testing.assert_array_equal(derived.indices, rebuilt.indices)
    np.testing.assert_allclose(derived.similarities, rebuilt.similarities, rtol=1e-6)


def test_a_graph_without_rows_asks_for_a_rebuild_when_neighbours_run_out():
    from dataaudit.coverage.scoring import graph_without
    from dataaudit.neighbors import build_knn

    vectors = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    removed = np.arange(40) >= 30
    assert graph_without(build_knn(vectors, k=5), removed, width=10) is None
    assert graph_without(build_knn(vectors, k=39), removed, width=10).indices.shape == (30, 10)


@given(st.integers(0, 2**32 - 1), st.floats(0.01, 0.6), st.integers(3, 40))
@settings(max_examples=40, deadline=None)
def test_a_held_out_graph_is_the_exact_query_of_the_held_out_rows(seed, share, width):
    """Read off an exact graph (and searched where too few neighbours remain), the held-out rows'
    neighbours among the rest are what an exact query against the rest gives."""
    from dataaudit.coverage.scoring import held_out_graph
    from dataaudit.neighbors import build_knn, query_knn

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((150, 8)).astype(np.float32)
    held_out = rng.random(150) < share
    if held_out.all() or not held_out.any():
        held_out[:2] = [True, False]
    rest, held = vectors[~held_out], vectors[held_out]
    derived = held_out_graph(build_knn(vectors, k=20), held_out, rest, held, width=width)
    asked = query_knn(rest, held, k=width)
    np.testing.assert_array_equal(derived.indices, asked.indices)
    np.testing.assert_allclose(derived.similarities, asked.similarities, rtol=1e-5, atol=1e-6)
