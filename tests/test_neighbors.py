"""k-nearest-neighbour graphs: exact agrees with brute force, approximate recalls it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dataaudit import neighbors
from dataaudit.errors import UsageError
from dataaudit.neighbors import KnnGraph, build_knn, query_knn


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(queries: np.ndarray, reference: np.ndarray, k: int, exclude_self: bool) -> np.ndarray:
    similarities = unit(queries) @ unit(reference).T
    if exclude_self:
        np.fill_diagonal(similarities, -np.inf)
    return np.argsort(-similarities, axis=1, kind="stable")[:, :k]


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return unit(centres[rng.integers(clusters, size=n)] + 0.3 * rng.normal(size=(n, dim)))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)])


def test_exact_matches_brute_force():
    vectors = np.random.default_rng(0).normal(size=(300, 16))
    graph = build_knn(vectors, k=7)
    assert graph.indices.shape == (300, 7) and graph.indices.dtype == np.int64
    assert graph.similarities.dtype == np.float32
    np.testing.assert_array_equal(graph.indices, brute_force(vectors, vectors, 7, exclude_self=True))
    expected = np.take_along_axis(unit(vectors) @ unit(vectors).T, graph.indices, axis=1)
    np.testing.assert_allclose(graph.similarities, expected, atol=1e-5)


def test_small_blocks_give_the_same_graph(monkeypatch):
    vectors = np.random.default_rng(1).normal(size=(120, 8))
    whole = build_knn(vectors, k=5)
    monkeypatch.setattr(neighbors, "_BLOCK_BYTES", 120 * 12 * 7)  # 7 rows per block
    chunked = build_knn(vectors, k=5)
    np.testing.assert_array_equal(whole.indices, chunked.indices)
    np.testing.assert_allclose(whole.similarities, chunked.similarities, atol=1e-6)  # BLAS rounding


@given(
    vectors=arrays(np.float32, st.tuples(st.integers(0, 25), st.just(4)), elements=st.floats(-1, 1, width=32)),
    k=st.integers(0, 30),
)
@settings(max_examples=80, deadline=None)
def test_graph_invariants(vectors, k):
    graph = build_knn(vectors, k=k)
    n = len(vectors)
    width = max(0, min(k, n - 1))
    assert graph.indices.shape == graph.similarities.shape == (n, width)
    assert not np.any(graph.indices == np.arange(n)[:, None])
    assert np.all(np.diff(graph.similarities, axis=1) <= 0)
    assert np.all(np.isfinite(graph.similarities))
    assert np.all(np.abs(graph.similarities) <= 1.0)
    for row in graph.indices:
        assert len(set(row.tolist())) == len(row)


def test_self_is_excluded_even_when_duplicates_tie():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    graph = build_knn(vectors, k=2)
    np.testing.assert_array_equal(graph.indices[:3], [[1, 2], [0, 2], [0, 1]])
    np.testing.assert_allclose(graph.similarities[:3], 1.0)
    assert graph.indices[3, 0] == 4 and graph.indices[3, 1] in {0, 1, 2}  # any of the tied three


def test_k_is_clipped_and_tiny_inputs_work():
    assert build_knn(np.ones((3, 2)), k=10).indices.shape == (3, 2)
    one = build_knn(np.ones((1, 5)))
    assert one.indices.shape == (1, 0) and one.similarities.shape == (1, 0)
    empty = build_knn(np.zeros((0, 5)))
    assert empty.indices.shape == (0, 0)
    assert build_knn(np.array([])).indices.shape == (0, 0)


def test_zero_rows_do_not_produce_nan():
    graph = build_knn(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), k=2)
    assert np.all(np.isfinite(graph.similarities))


def test_bad_input_is_a_usage_error():
    with pytest.raises(UsageError, match="2-D"):
        build_knn(np.ones(4))
    with pytest.raises(UsageError, match="NaN"):
        build_knn(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(UsageError, match="same model"):
        query_knn(np.ones((3, 4)), np.ones((2, 5)))


def test_query_exact_matches_brute_force():
    rng = np.random.default_rng(2)
    reference, queries = rng.normal(size=(200, 12)), rng.normal(size=(50, 12))
    graph = query_knn(reference, queries, k=5)
    assert graph.indices.shape == (50, 5)
    np.testing.assert_array_equal(graph.indices, brute_force(queries, reference, 5, exclude_self=False))


def test_query_finds_identical_reference_rows_and_clips_k():
    reference = np.eye(3)
    graph = query_knn(reference, reference[[2, 0]], k=10)
    assert graph.indices.shape == (2, 3)
    np.testing.assert_array_equal(graph.indices[:, 0], [2, 0])
    np.testing.assert_allclose(graph.similarities[:, 0], 1.0)
    assert query_knn(np.zeros((0, 3)), np.ones((4, 3))).indices.shape == (4, 0)
    assert query_knn(reference, np.zeros((0, 3))).indices.shape == (0, 3)


def test_rows_pynndescent_left_short_are_redone_exactly():
    vectors = np.random.default_rng(3).normal(size=(50, 6))
    exact = build_knn(vectors, k=4)
    holed = KnnGraph(indices=exact.indices.copy(), similarities=exact.similarities.copy())
    holed.indices[[3, 7], -1] = -1
    holed.similarities[[3, 7], -1] = -1.0
    repaired = neighbors._fill_holes(holed, unit(vectors), unit(vectors), exclude_self=True)
    np.testing.assert_array_equal(repaired.indices, exact.indices)


@pytest.mark.slow  # pynndescent's numba JIT compiles on first use (tens of seconds)
def test_approximate_recall_against_exact():
    vectors = clustered(3000, 32, clusters=30, seed=0)
    vectors[1] = vectors[0]  # an exact duplicate pair must still exclude self
    approximate = build_knn(vectors, k=10, exact_max_rows=500, seed=0)
    exact = build_knn(vectors, k=10)
    assert approximate.indices.shape == (3000, 10)
    assert not np.any(approximate.indices == np.arange(3000)[:, None])
    assert approximate.indices[0, 0] == 1 and approximate.indices[1, 0] == 0
    assert np.all(np.diff(approximate.similarities, axis=1) <= 1e-6)
    assert recall(approximate.indices, exact.indices) >= 0.9

    queries = clustered(300, 32, clusters=30, seed=0)[:300] + 0.01
    approximate_query = query_knn(vectors, queries, k=10, exact_max_rows=100, seed=0)
    exact_query = query_knn(vectors, queries, k=10)
    assert recall(approximate_query.indices, exact_query.indices) >= 0.9


def _reference_exact_knn(queries, reference, k, self_rows):
    """The whole-row exact search as it was (one argpartition over every reference row)."""
    block = queries @ reference.T
    if self_rows is not None:
        block[np.arange(len(queries)), self_rows] = -np.inf
    candidates = np.argpartition(block, block.shape[1] - k, axis=1)[:, block.shape[1] - k:]
    similarities = np.take_along_axis(block, candidates, axis=1)
    order = np.lexsort((candidates, -similarities), axis=1)
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(similarities, order, axis=1)


@given(n=st.integers(2, 60), queries=st.integers(1, 40), k=st.integers(1, 12), chunk=st.integers(1, 9), seed=st.integers(0, 99),
       duplicates=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_reference_chunked_running_top_k_equals_the_whole_row_search(monkeypatch, n, queries, k, chunk, seed, duplicates):
    rng = np.random.default_rng(seed)
    reference = unit(rng.normal(size=(n, 6)))
    if duplicates:  # exact ties: the lower reference row must win them
        reference[1::2] = reference[::2][: len(reference[1::2])]
    query = unit(rng.normal(size=(queries, 6)))
    k = min(k, n - 1)
    # Small budgets: several query blocks, and reference chunks of `chunk` rows (at least k).
    monkeypatch.setattr(neighbors, "_QUERY_BLOCK_ROWS", 7)
    monkeypatch.setattr(neighbors, "_BLOCK_BYTES", 7 * 12 * chunk)
    for q, self_rows in ((query, None), (reference, np.arange(n))):
        graph = neighbors.exact_knn(q, reference, k=k, self_rows=self_rows)
        expected_indices, expected_similarities = _reference_exact_knn(q, reference, k, self_rows)
        np.testing.assert_allclose(graph.similarities, np.clip(expected_similarities, -1, 1), atol=1e-6)  # BLAS rounding
        if not duplicates:
            np.testing.assert_array_equal(graph.indices, expected_indices)
        else:  # exact ties: any of the tied rows, each once, never the row itself
            truth = q @ reference.T
            if self_rows is not None:
                truth[np.arange(n), self_rows] = -np.inf
            np.testing.assert_allclose(np.take_along_axis(truth, graph.indices, axis=1), graph.similarities, atol=1e-6)
            assert all(len(set(row)) == k for row in graph.indices.tolist())


def _assert_exact_top_k(graph, queries, reference, k, self_rows):
    """The k best similarities (float32 rounding aside), each reference row once, never a query's own."""
    truth = queries.astype(np.float64) @ reference.astype(np.float64).T
    if self_rows is not None:
        truth[np.arange(len(queries)), self_rows] = -np.inf
    best = -np.sort(-truth, axis=1)[:, :k]
    np.testing.assert_allclose(np.take_along_axis(truth, graph.indices, axis=1), best, atol=1e-5)
    np.testing.assert_allclose(graph.similarities, np.clip(best, -1, 1), atol=1e-5)
    assert all(len(set(row)) == k for row in graph.indices.tolist())


@given(n=st.integers(2, 80), queries=st.integers(1, 30), k=st.integers(1, 12), chunk=st.integers(1, 9), seed=st.integers(0, 99),
       spread=st.sampled_from([1.0, 0.05, 0.002]), crowded=st.integers(1, 64))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_screened_search_finds_the_exact_neighbours(monkeypatch, n, queries, k, chunk, seed, spread, crowded):
    """bfloat16 screening loses no neighbour: near-identical rows (many within the margin) included,
    and chunks with too many candidates (``crowded`` per row allowed) multiplied in float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 24))
    reference = unit(centres[rng.integers(3, size=n)] + spread * rng.normal(size=(n, 24)))
    query = unit(centres[rng.integers(3, size=queries)] + spread * rng.normal(size=(queries, 24)))
    k = min(k, n - 1)
    monkeypatch.setattr(neighbors, "SCREEN_MIN_REFERENCE", 0)
    monkeypatch.setattr(neighbors, "cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setattr(neighbors, "_SCREEN_MAX_CANDIDATES", crowded)
    monkeypatch.setattr(neighbors, "_RESCORE_PAIRS", 5)
    monkeypatch.setattr(neighbors, "_QUERY_BLOCK_ROWS", 7)
    monkeypatch.setattr(neighbors, "_BLOCK_BYTES", 7 * 12 * chunk)
    for q, self_rows in ((query, None), (reference, np.arange(n))):
        _assert_exact_top_k(neighbors.exact_knn(q, reference, k=k, self_rows=self_rows), q, reference, k, self_rows)


def test_screened_search_is_used_for_a_large_reference_and_matches_float32(monkeypatch):
    rng = np.random.default_rng(0)
    reference = clustered(3000, 32, 20, seed=1)
    query = unit(reference[rng.integers(3000, size=200)] + 0.01 * rng.normal(size=(200, 32)))
    monkeypatch.setattr(neighbors, "cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setattr(neighbors, "SCREEN_MIN_REFERENCE", 3000)
    monkeypatch.setattr(neighbors, "_BLOCK_BYTES", 64 * 12 * 400)  # several chunks, so most are screened
    used = []
    monkeypatch.setattr(neighbors._ScreenedBlock, "add", _recording(neighbors._ScreenedBlock.add, used))
    screened = neighbors.exact_knn(query, reference, k=10, self_rows=None)
    assert used, "the screened search was not used"
    monkeypatch.setattr(neighbors, "SCREEN_MIN_REFERENCE", 3001)
    plain = neighbors.exact_knn(query, reference, k=10, self_rows=None)
    _assert_exact_top_k(screened, query, reference, 10, None)
    np.testing.assert_allclose(screened.similarities, plain.similarities, atol=1e-6)


def _recording(method, calls):
    def wrapper(self, *args):
        calls.append(1)
        return method(self, *args)
    return wrapper


@pytest.mark.parametrize("dim", [8, 384, 1024])
def test_bfloat16_products_stay_within_the_screen_margin(dim):
    """The margin is a bound, not an estimate: random rows, rows of one spike, and rows of equal
    entries (the worst case for rounding) never exceed it."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(dim)
    spiky = np.zeros((64, dim))
    spiky[np.arange(64), rng.integers(dim, size=64)] = 1.0
    rows = unit(np.concatenate([rng.normal(size=(256, dim)), spiky + 0.01 * rng.normal(size=(64, dim)),
                                np.ones((8, dim)) + 1e-3 * rng.normal(size=(8, dim)), rng.random((64, dim))]))
    exact = rows.astype(np.float64) @ rows.astype(np.float64).T
    bf16 = torch.from_numpy(rows).to(torch.bfloat16)
    screened = (bf16 @ bf16.T).float().numpy()
    assert np.abs(screened - exact).max() <= neighbors.screen_margin(dim)
