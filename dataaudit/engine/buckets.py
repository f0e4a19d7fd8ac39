"""Bucketed (IVF-style) kNN for the Ray engine, past the size where an exact scan pays.

Spherical k-means on a sample gives ``buckets`` centroids; every row lives in its nearest
bucket and searches its ``probes`` nearest ones. Rows are grouped by bucket (the shuffle), each
bucket's queries are matched exactly against its members, and each row keeps its best ``k``
over the buckets it probed, ties broken by row index as in the exact search. Work per row is
about ``probes / buckets`` of an exact scan. Rows left with fewer than ``k`` candidates
(tiny buckets) are searched exactly. Recall against the exact graph: ``bench/bench_engine.py``.
"""

from __future__ import annotations

import math

import numpy as np

from dataaudit.progress import Progress

_KMEANS_ITERATIONS = 10
_SAMPLE_PER_BUCKET = 40


def bucketed_knn(ray, unit: np.ndarray, *, k: int, buckets: int | None, probes: int, seed: int, workers: int,
                 progress: Progress):
    """Each row's ``k`` nearest other rows among the rows of its ``probes`` nearest buckets.

    ``unit`` holds unit rows (or all-zero ones); ``k`` is already clipped to ``n - 1``.
    """
    from dataaudit.neighbors import KnnGraph, exact_knn

    n = len(unit)
    n_buckets = max(1, min(n, buckets or round(math.sqrt(n))))
    probes = max(1, min(probes, n_buckets))
    centroids = _spherical_kmeans(unit, n_buckets, seed=seed)
    shared, shared_centroids = ray.put(unit), ray.put(centroids)
    slices = _slices(n, 4 * workers)
    assign = ray.remote(num_cpus=1)(_nearest_buckets)
    nearest = np.concatenate(ray.get([assign.remote(shared, shared_centroids, start, stop, probes) for start, stop in slices]))

    # The shuffle: members of each bucket (by home bucket) and its queries (by any probed bucket).
    home = nearest[:, 0]
    member_order = np.argsort(home, kind="stable")
    member_bounds = np.searchsorted(home[member_order], np.arange(n_buckets + 1))
    query_rows = np.repeat(np.arange(n), probes)
    query_buckets = nearest.reshape(-1)
    query_order = np.lexsort((query_rows, query_buckets))
    query_bounds = np.searchsorted(query_buckets[query_order], np.arange(n_buckets + 1))
    search = ray.remote(num_cpus=1)(_search_buckets)
    groups = _slices(n_buckets, 4 * workers)
    pending = []
    for first, last in groups:
        jobs = [(member_order[member_bounds[b]:member_bounds[b + 1]], query_rows[query_order[query_bounds[b]:query_bounds[b + 1]]])
                for b in range(first, last)]
        pending.append(search.remote(shared, jobs, k))
    queries, candidates, similarities = [], [], []
    with progress.task("Nearest neighbours (Ray, bucketed)", total=len(pending)) as task:
        for future in pending:
            part_queries, part_candidates, part_similarities = ray.get(future)
            queries.append(part_queries)
            candidates.append(part_candidates)
            similarities.append(part_similarities)
            task.advance(1)
    queries, candidates, similarities = (np.concatenate(parts) for parts in (queries, candidates, similarities))

    # Best k per row over its buckets: similarity first, then the lower row index.
    order = np.lexsort((candidates, -similarities, queries))
    queries, candidates, similarities = queries[order], candidates[order], similarities[order]
    starts = np.searchsorted(queries, np.arange(n))
    counts = np.diff(np.append(starts, len(queries)))
    rank = np.arange(len(queries)) - np.repeat(starts, counts)
    keep = rank < k
    indices = np.full((n, k), -1, dtype=np.int64)
    found = np.zeros((n, k), dtype=np.float32)
    indices[queries[keep], rank[keep]] = candidates[keep]
    found[queries[keep], rank[keep]] = similarities[keep]
    short = np.flatnonzero(counts < k)
    if len(short):
        redo = exact_knn(unit[short], unit, k=k, self_rows=short)
        indices[short], found[short] = redo.indices, redo.similarities
    return KnnGraph(indices=indices, similarities=found)


def _spherical_kmeans(unit: np.ndarray, n_buckets: int, *, seed: int) -> np.ndarray:
    """Unit centroids from a sample: k-means on the sphere (assign by cosine, renormalise means)."""
    rng = np.random.default_rng(seed)
    n = len(unit)
    sample = unit[np.sort(rng.choice(n, size=min(n, _SAMPLE_PER_BUCKET * n_buckets), replace=False))]
    centroids = sample[rng.choice(len(sample), size=n_buckets, replace=False)].copy()
    for _ in range(_KMEANS_ITERATIONS):
        assignment = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        centroids = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
        centroids[empty] = sample[rng.choice(len(sample), size=int(empty.sum()))]
    return centroids.astype(np.float32)


def _slices(n: int, parts: int) -> list[tuple[int, int]]:
    size = max(1, math.ceil(n / max(1, parts)))
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _nearest_buckets(unit: np.ndarray, centroids: np.ndarray, start: int, stop: int, probes: int) -> np.ndarray:
    """Rows ``start:stop``'s ``probes`` nearest buckets, nearest first (ties: lower bucket)."""
    similarities = unit[start:stop] @ centroids.T
    if probes < centroids.shape[0]:
        candidates = np.argpartition(-similarities, probes - 1, axis=1)[:, :probes]
    else:
        candidates = np.broadcast_to(np.arange(centroids.shape[0]), similarities.shape).copy()
    chosen = np.take_along_axis(similarities, candidates, axis=1)
    order = np.lexsort((candidates, -chosen), axis=1)
    return np.take_along_axis(candidates, order, axis=1).astype(np.int64)


def _search_buckets(unit: np.ndarray, jobs: list[tuple[np.ndarray, np.ndarray]], k: int):
    """Exact neighbours of each bucket's queries among its members, the query itself excluded."""
    from dataaudit.neighbors import exact_knn

    queries, candidates, similarities = [], [], []
    for members, bucket_queries in jobs:
        if len(members) == 0 or len(bucket_queries) == 0:
            continue
        # One spare neighbour: the query itself is among the members of its home bucket.
        width = min(k + 1, len(members))
        graph = exact_knn(unit[bucket_queries], unit[members], k=width, self_rows=None)
        rows = members[graph.indices]
        keep = rows != bucket_queries[:, None]
        over = keep.sum(axis=1) > k  # self absent: drop the weakest spare instead
        keep[over, width - 1] = False
        queries.append(np.repeat(bucket_queries, keep.sum(axis=1)))
        candidates.append(rows[keep])
        similarities.append(graph.similarities[keep])
    if not queries:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(queries), np.concatenate(candidates), np.concatenate(similarities)
