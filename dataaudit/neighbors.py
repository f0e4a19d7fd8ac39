"""k-nearest-neighbour graphs over embeddings, by cosine similarity.

Small inputs get exact neighbours from chunked matrix products (memory stays bounded whatever
the size); large ones use pynndescent, whose index build is near-linear instead of quadratic.
pynndescent is imported only on that path: it pulls in numba and compiles on first use (in
every process, but for the kernels :mod:`dataaudit.kernel_cache` keeps on disk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.progress import NULL_PROGRESS, Progress

# One block of float32 similarities plus argpartition's int64 index array stays under this.
_BLOCK_BYTES = 256 << 20
# NN-descent needs many more points than neighbours to converge, and below this size exact
# search takes milliseconds anyway.
_SMALLEST_APPROXIMATE = 1_000
#: Random-projection trees that seed NN-descent. pynndescent's default grows with the data
#: (27 at 200k rows, 55 at 1M); 12 gave the same recall@30 at 200k (0.980 vs 0.980) for 54% of
#: the CPU time (bench/bench_knn.py): NN-descent's own iterations do the refining.
_NN_TREES = 12


@dataclass(frozen=True)
class KnnGraph:
    """Row ``i`` lists the ``k`` rows most similar to row ``i``, most similar first."""

    indices: np.ndarray  # (n, k) int64, neighbours sorted by decreasing similarity, self excluded
    similarities: np.ndarray  # (n, k) float32 cosine


def build_knn(
    embeddings: np.ndarray,
    *,
    k: int = 15,
    exact_max_rows: int = 20_000,
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> KnnGraph:
    """Each row's ``k`` nearest other rows (``k`` clipped to ``n - 1``).

    A row is never its own neighbour, even when exact duplicates tie with it; duplicates of it
    do appear (they are what the duplicate check looks for). Exact up to ``exact_max_rows``
    rows (and always below 1,000), approximate (pynndescent, seeded) above. Inputs need not be
    normalised: rows are scaled to unit length, and all-zero rows get similarity 0.
    """
    vectors = unit_rows(embeddings, "embeddings")
    n = len(vectors)
    k = max(0, min(k, n - 1))
    if k == 0:
        return _empty_graph(n)
    if n <= max(exact_max_rows, _SMALLEST_APPROXIMATE):
        return exact_knn(vectors, vectors, k=k, self_rows=np.arange(n), progress=progress)
    return _approximate_self(vectors, k=k, seed=seed, progress=progress)


def query_knn(
    reference: np.ndarray,
    queries: np.ndarray,
    *,
    k: int = 15,
    exact_max_rows: int = 20_000,
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> KnnGraph:
    """Each query row's ``k`` nearest reference rows (``k`` clipped to the reference size).

    Used to ask "is this production text covered by training data?". Exact while either side
    has at most ``exact_max_rows`` rows (or the reference under 1,000): brute force is then
    linear in the other side, and scanning a million reference rows for 10,000 queries is
    cheaper than building a pynndescent index over them. Otherwise such an index over the
    reference answers the queries.
    """
    reference_vectors = unit_rows(reference, "reference")
    query_vectors = unit_rows(queries, "queries")
    if len(query_vectors) and len(reference_vectors) and reference_vectors.shape[1] != query_vectors.shape[1]:
        raise UsageError(
            f"reference vectors are {reference_vectors.shape[1]}-d but queries are "
            f"{query_vectors.shape[1]}-d; embed both with the same model"
        )
    k = max(0, min(k, len(reference_vectors)))
    if k == 0:
        return _empty_graph(len(query_vectors))
    if min(len(reference_vectors), len(query_vectors)) <= exact_max_rows or len(reference_vectors) <= _SMALLEST_APPROXIMATE:
        return exact_knn(query_vectors, reference_vectors, k=k, self_rows=None, progress=progress)
    return _approximate_query(reference_vectors, query_vectors, k=k, seed=seed, progress=progress)


def unit_rows(embeddings: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """float32 unit rows, so dot products are cosines even for unnormalised input.

    Rows that are already unit length come back as they are: a copy costs 1.5 GB per view at a
    million rows, and every kNN build and precomputed view passes through here.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim == 1 and vectors.size == 0:
        vectors = vectors.reshape(0, 0)
    if vectors.ndim != 2:
        raise UsageError(f"{what} must be a 2-D array (rows = texts), got shape {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise UsageError(f"{what} contain NaN or inf")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.all(np.abs(norms - 1.0) < 1e-4):
        return vectors
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _empty_graph(n: int) -> KnnGraph:
    return KnnGraph(indices=np.zeros((n, 0), dtype=np.int64), similarities=np.zeros((n, 0), dtype=np.float32))


def exact_block_rows(n_reference: int) -> int:
    """Query rows per block of :func:`exact_knn` against ``n_reference`` rows.

    Distributed callers split queries on multiples of it: a matrix product's low bits depend
    on how its rows are blocked, so other splits could break ties differently.
    """
    return max(_QUERY_BLOCK_ROWS, _BLOCK_BYTES // (max(n_reference, 1) * (4 + 8)))


#: Query rows per block at least: a block of 21 queries against a million references (what the
#: byte budget alone gives) streams the whole reference matrix from memory for every 21 rows.
_QUERY_BLOCK_ROWS = 1024


def exact_knn(
    queries: np.ndarray,
    reference: np.ndarray,
    *,
    k: int,
    self_rows: np.ndarray | None,
    progress: Progress = NULL_PROGRESS,
) -> KnnGraph:
    """Top-k by brute force over unit rows; ``self_rows[i]`` is the reference row query ``i`` must not get.

    Queries go in blocks of :func:`exact_block_rows`; against a large reference each block scans
    it in chunks and keeps a running top-k, so one similarity block stays under the byte budget
    however many rows the reference has. After the first chunk only similarities at or above a
    row's current k-th best are merged in. Exact ties go to the lower reference row. Queries ``a:b``
    with ``a`` a multiple of :func:`exact_block_rows` get exactly the rows ``a:b`` of the whole
    computation, which is how the Ray engine splits it over tasks.
    """
    n_queries, n_reference = len(queries), len(reference)
    indices = np.empty((n_queries, k), dtype=np.int64)
    similarities = np.empty((n_queries, k), dtype=np.float32)
    block_rows = exact_block_rows(n_reference)
    chunk_rows = max(k, _BLOCK_BYTES // (block_rows * (4 + 8)))
    with progress.task("Nearest neighbours (exact)", total=n_queries) as task:
        for start in range(0, n_queries, block_rows):
            stop = min(start + block_rows, n_queries)
            best, best_similarity = None, None
            for first in range(0, n_reference, chunk_rows):
                last = min(first + chunk_rows, n_reference)
                block = queries[start:stop] @ reference[first:last].T
                if self_rows is not None:
                    # By position, not by value: a duplicate of row i must stay a neighbour of i.
                    own = self_rows[start:stop]
                    inside = np.flatnonzero((own >= first) & (own < last))
                    block[inside, own[inside] - first] = -np.inf
                if best is None:
                    best, best_similarity = _top_k(block, k, first)
                else:
                    best, best_similarity = _merge_top_k(best, best_similarity, block, first)
            indices[start:stop], similarities[start:stop] = best, best_similarity
            task.advance(stop - start)
    np.clip(similarities, -1.0, 1.0, out=similarities)
    return KnnGraph(indices=indices, similarities=similarities)


def _top_k(block: np.ndarray, k: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest entries of a full block, most similar first; ties go to the lower column,
    so the result is the same however the reference is chunked."""
    width = block.shape[1]
    kth = np.partition(block, width - k, axis=1)[:, width - k] if k < width else np.full(len(block), -np.inf, dtype=block.dtype)
    rows, columns = np.nonzero(block >= kth[:, None])
    return _first_k(rows, columns + offset, block[rows, columns], len(block), k)


def _first_k(row: np.ndarray, index: np.ndarray, similarity: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row (every row has at least k entries), the k most similar, ties by index, as (n, k) arrays."""
    order = np.lexsort((index, -similarity, row))
    starts = np.searchsorted(row[order], np.arange(n))
    keep = order[(starts[:, None] + np.arange(k)).ravel()]
    return index[keep].reshape(n, k), similarity[keep].reshape(n, k)


def _merge_top_k(best: np.ndarray, best_similarity: np.ndarray, block: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The running top-k (sorted) merged with the entries of the next reference chunk that can enter it."""
    rows, columns = np.nonzero(block >= best_similarity[:, -1:])
    if rows.size == 0:
        return best, best_similarity
    n, k = best.shape
    row = np.concatenate([np.repeat(np.arange(n), k), rows])
    index = np.concatenate([best.ravel(), columns + offset])
    similarity = np.concatenate([best_similarity.ravel(), block[rows, columns]])
    return _first_k(row, index, similarity, n, k)


def _approximate_self(vectors: np.ndarray, *, k: int, seed: int, progress: Progress) -> KnnGraph:
    from pynndescent import NNDescent

    from dataaudit.kernel_cache import persist_pynndescent_kernels

    persist_pynndescent_kernels()
    with progress.task("Nearest neighbours (approximate)", total=len(vectors)) as task:
        # One extra neighbour because the graph normally contains each point itself.
        index = NNDescent(vectors, metric="cosine", n_neighbors=k + 1, random_state=seed, n_trees=_NN_TREES)
        candidates, distances = index.neighbor_graph
        task.advance(len(vectors))
    candidates = np.asarray(candidates, dtype=np.int64)
    is_self = candidates == np.arange(len(vectors))[:, None]
    # Drop self where it was found; otherwise (a duplicate displaced it) drop the weakest.
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(is_self)
    keep[np.arange(len(vectors)), drop] = False
    candidates = candidates[keep].reshape(len(vectors), k)
    distances = np.asarray(distances)[keep].reshape(len(vectors), k)
    return _fill_holes(_sorted_graph(candidates, distances), vectors, vectors, exclude_self=True)


def _approximate_query(
    reference: np.ndarray, queries: np.ndarray, *, k: int, seed: int, progress: Progress
) -> KnnGraph:
    from pynndescent import NNDescent

    from dataaudit.kernel_cache import persist_pynndescent_kernels

    persist_pynndescent_kernels()
    with progress.task("Nearest neighbours (approximate)", total=len(queries)) as task:
        index = NNDescent(reference, metric="cosine", n_neighbors=max(k, 15), random_state=seed)
        candidates, distances = index.query(queries, k=k)
        task.advance(len(queries))
    graph = _sorted_graph(np.asarray(candidates, dtype=np.int64), np.asarray(distances))
    return _fill_holes(graph, queries, reference, exclude_self=False)


def _sorted_graph(candidates: np.ndarray, distances: np.ndarray) -> KnnGraph:
    """Cosine distance to similarity, most similar first."""
    similarities = np.clip(1.0 - distances, -1.0, 1.0).astype(np.float32)
    order = np.lexsort((candidates, -similarities), axis=1)
    return KnnGraph(
        indices=np.take_along_axis(candidates, order, axis=1),
        similarities=np.take_along_axis(similarities, order, axis=1),
    )


def _fill_holes(graph: KnnGraph, queries: np.ndarray, reference: np.ndarray, *, exclude_self: bool) -> KnnGraph:
    """Redo exactly the rare rows where pynndescent found fewer than k neighbours (index -1)."""
    short = np.flatnonzero((graph.indices < 0).any(axis=1))
    if len(short) == 0:
        return graph
    k = graph.indices.shape[1]
    redo = exact_knn(queries[short], reference, k=k, self_rows=short if exclude_self else None, progress=NULL_PROGRESS)
    indices, similarities = graph.indices.copy(), graph.similarities.copy()
    indices[short], similarities[short] = redo.indices, redo.similarities
    return KnnGraph(indices=indices, similarities=similarities)
