"""k-nearest-neighbour graphs over embeddings, by cosine similarity.

Small inputs get exact neighbours from chunked matrix products (memory stays bounded whatever
the size); large ones use pynndescent, whose index build is near-linear instead of quadratic.
pynndescent is imported only on that path: it pulls in numba and compiles on first use (in
every process, but for the kernels :mod:`dataaudit.kernel_cache` keeps on disk).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import cpu_has_native_bfloat16

if TYPE_CHECKING:
    import torch

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
    row's current k-th best are merged in. Against a reference of :data:`SCREEN_MIN_REFERENCE` rows
    or more, on a CPU with native bfloat16 products, the products are screened in bfloat16 and
    only the entries that can still enter a row's top-k are computed in float32 (2.7x faster for
    10,000 queries against a million rows; the same neighbours). Exact ties go to the lower reference row. Queries ``a:b``
    with ``a`` a multiple of :func:`exact_block_rows` get exactly the rows ``a:b`` of the whole
    computation, which is how the Ray engine splits it over tasks.
    """
    n_queries, n_reference = len(queries), len(reference)
    indices = np.empty((n_queries, k), dtype=np.int64)
    similarities = np.empty((n_queries, k), dtype=np.float32)
    block_rows = exact_block_rows(n_reference)
    chunk_rows = max(k, _BLOCK_BYTES // (block_rows * (4 + 8)))
    # By the reference's size alone, so a block of queries is searched the same way whatever
    # other queries share the call (the Ray engine's split relies on it).
    search = _ScreenedBlock if n_reference >= SCREEN_MIN_REFERENCE and cpu_has_native_bfloat16() else _Float32Block
    with progress.task("Nearest neighbours (exact)", total=n_queries) as task:
        for start in range(0, n_queries, block_rows):
            stop = min(start + block_rows, n_queries)
            own = None if self_rows is None else self_rows[start:stop]
            block = search(queries[start:stop], own, k)
            for first in range(0, n_reference, chunk_rows):
                block.add(reference[first:min(first + chunk_rows, n_reference)], first)
            indices[start:stop], similarities[start:stop] = block.best, block.best_similarity
            task.advance(stop - start)
    np.clip(similarities, -1.0, 1.0, out=similarities)
    return KnnGraph(indices=indices, similarities=similarities)


class _Float32Block:
    """The running top-k of a block of queries over reference chunks, from float32 products."""

    def __init__(self, queries: np.ndarray, own: np.ndarray | None, k: int):
        self.queries, self.own, self.k = queries, own, k
        self.best: np.ndarray | None = None
        self.best_similarity: np.ndarray | None = None

    def add(self, chunk: np.ndarray, first: int) -> None:
        block = self.queries @ chunk.T
        _exclude_own(block, self.own, first)
        if self.best is None:
            self.best, self.best_similarity = _top_k(block, self.k, first)
        else:
            self.best, self.best_similarity = _merge_top_k(self.best, self.best_similarity, block, first)


#: Reference rows from which exact search screens in bfloat16 first on a CPU that multiplies
#: bfloat16 natively (``bench/bench_knn.py --exact-queries``): production prompts against a large training
#: set, not the exact graph of at most 20,000 rows. The first chunk of every block is multiplied
#: in float32 (there is no line to screen against yet), so small references gain little.
SCREEN_MIN_REFERENCE = 100_000
#: Candidates per query row and chunk beyond which a chunk is multiplied in float32 instead:
#: rescoring each candidate alone costs more than the matrix product (near-identical rows).
_SCREEN_MAX_CANDIDATES = 64
#: Candidate pairs rescored at once (their rows gathered: 2 x 384 floats each at MiniLM's size).
_RESCORE_PAIRS = 16_384


def screen_margin(dim: int) -> float:
    """How far a bfloat16 product of two unit rows can be from the exact one, at most.

    Rounding each input to bfloat16 (unit roundoff ``u = 2**-8``) moves a product by at most
    ``(2u + u**2) * sum(|x_i y_i|) <= 2u + u**2`` for unit rows; the float32 accumulation of ``dim``
    terms adds at most ``dim * 2**-24`` (doubled for slack), rounding the result to bfloat16 at
    most ``u`` of it (``<= 1 + 2.1u``). Measured errors stay under a third of this.
    """
    u = 2.0 ** -8
    return (2 * u + u * u) + dim * 2.0 ** -23 + u * (1 + 2.1 * u)


class _ScreenedBlock:
    """The same top-k as :class:`_Float32Block`, with the products screened in bfloat16.

    A bfloat16 product (4x float32's on AVX512-BF16) is off by :func:`screen_margin` at most, so
    no entry of the true top-k screens lower than the running k-th best similarity minus that
    margin; only entries above that line are rescored in float32, one dot product each. So the
    result is exact: the same rows as float32 blocks, similarities equal to float32 rounding. A
    chunk with too many entries above the line (the first, before there is one) is multiplied in
    float32 as a whole.
    """

    def __init__(self, queries: np.ndarray, own: np.ndarray | None, k: int):
        self.queries, self.own = queries, own
        self.screened = _bfloat16(queries)
        # The line is rounded to bfloat16 for a fast comparison: lowered first by half a bfloat16
        # step of values up to 2, so rounding can only move it down.
        self.margin = screen_margin(queries.shape[1]) + 2.0 ** -8
        # Padding that any real entry displaces (index -1 sorts first only among equals).
        self.best = np.full((len(queries), k), -1, dtype=np.int64)
        self.best_similarity = np.full((len(queries), k), -np.inf, dtype=np.float32)

    def add(self, chunk: np.ndarray, first: int) -> None:
        import torch

        line = _bfloat16(self.best_similarity[:, -1] - np.float32(self.margin))
        above = self.screened @ _bfloat16(chunk).T >= line[:, None]
        _exclude_own(above, self.own, first, False)  # a -inf line would still let a row's own entry in
        rows, columns = (part.numpy() for part in torch.nonzero(above, as_tuple=True))
        if rows.size > _SCREEN_MAX_CANDIDATES * len(self.queries):
            block = self.queries @ chunk.T
            _exclude_own(block, self.own, first)
            top, top_similarity = _top_k(block, min(self.best.shape[1], len(chunk)), first)  # the last chunk may be narrower
            rows = np.repeat(np.arange(len(top)), top.shape[1])
            self.best, self.best_similarity = _merge_entries(self.best, self.best_similarity, rows, top.ravel(),
                                                             top_similarity.ravel())
            return
        similarity = np.empty(rows.size, dtype=np.float32)
        for start in range(0, rows.size, _RESCORE_PAIRS):
            part = slice(start, start + _RESCORE_PAIRS)
            similarity[part] = np.einsum("ij,ij->i", self.queries[rows[part]], chunk[columns[part]])
        self.best, self.best_similarity = _merge_entries(self.best, self.best_similarity, rows, columns + first, similarity)


def _exclude_own(block: "np.ndarray | torch.Tensor", own: np.ndarray | None, first: int, value: float = -np.inf) -> None:
    """Set each query's own entry of a block (reference columns from ``first``) to ``value``.

    By position, not by value: a duplicate of row i must stay a neighbour of i.
    """
    if own is None:
        return
    inside = np.flatnonzero((own >= first) & (own < first + block.shape[1]))
    block[inside, own[inside] - first] = value


def _bfloat16(array: np.ndarray) -> "torch.Tensor":
    """``array`` as a torch bfloat16 tensor (a copy; read-only input, a memory-mapped file, is only read)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's warning about read-only arrays
        return torch.from_numpy(np.ascontiguousarray(array)).to(torch.bfloat16)


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
    return _merge_entries(best, best_similarity, rows, columns + offset, block[rows, columns])


def _merge_entries(best: np.ndarray, best_similarity: np.ndarray, rows: np.ndarray, index: np.ndarray,
                   similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The running top-k merged with entries ``(rows, index, similarity)``."""
    if rows.size == 0:
        return best, best_similarity
    n, k = best.shape
    row = np.concatenate([np.repeat(np.arange(n), k), rows])
    index = np.concatenate([best.ravel(), index])
    similarity = np.concatenate([best_similarity.ravel(), similarity])
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
