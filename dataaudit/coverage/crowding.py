"""Crowding: production rows that crowd together where training has none.

The density and label scores ask how close a production row is to *training*. An intent that
training lacks but whose sibling intents it keeps can pass both: each of its production rows
sits as close to some sibling's training rows as training rows sit to each other, and those
siblings agree on their label. What gives it away is production itself. The missing intent's
production rows are closer to *each other* than to anything in training, so among a row's
``k`` nearest neighbours in training ∪ production, almost all are production rows.

The count of production rows among those ``k`` is compared with a binomial null whose rate
``expected_share_`` is this production set's own typical crowding: the mean count over its
least crowded ``1 - trim`` of rows (the most crowded tail may be the gaps), and never below
the share random mixing gives, ``(m - 1) / (n + m - 1)`` for ``m`` production and ``n``
training rows. Measuring the rate on production, not on training, matters on real traffic:
a test set collected apart from its training set (CLINC150's is) crowds with itself
everywhere, and a rate calibrated on training would call all of it a gap.

Production traffic repeats itself: the same request typed again is not a second piece of
evidence. Production rows at least ``copy_similarity`` alike (directly or through a chain) are
counted once, as their first row; each copy then takes that row's score. Without this, a
question asked a hundred times would crowd its own neighbourhood and read as a gap.

``crowding_gap_score`` is the binomial upper tail ``P(X >= count)``: lower = more crowded,
the same direction as the other gap scores. A fully crowded neighbourhood can only reach the
rule's ``alpha`` when ``expected_share_ ** k < alpha``: with production as large as training
(a share near 0.5) ten neighbours never can. So ``k`` grows until it can, sized first for the
random-mixing share (known before counting) and once more if production's own share is higher;
past ``max_k`` it does not grow, as the rule could not fire there anyway. The ``k_`` used is
reported. On Banking77 with 10 intents removed from
training, it surfaces intents that the density and label scores call covered
(bench/bench_coverage_banking.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dataaudit.features.pairs import group_labels
from dataaudit.neighbors import KnnGraph, build_knn, query_knn
from dataaudit.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class CrowdingScores:
    """Per query row."""

    count: np.ndarray  # (m,) int64: production rows among its k nearest in training ∪ production
    gap_score: np.ndarray  # (m,) float64: P(X >= count) under the null (NaN when not computed)


def binomial_tail(k: int, p: float) -> np.ndarray:
    """``tail[c] = P(X >= c)`` for ``X ~ Binomial(k, p)``, ``c = 0..k`` (exact sums; k is small)."""
    pmf = np.array([math.comb(k, j) * p**j * (1 - p) ** (k - j) for j in range(k + 1)], dtype=np.float64)
    return np.minimum(np.cumsum(pmf[::-1])[::-1], 1.0)


class CrowdingScorer:
    """Score how crowded by other production rows each production row's neighbourhood is.

    ``k``: neighbours in training ∪ production that are counted, at least. ``alpha``: the
    ``crowding_gap_score`` below which the caller's rule calls a row crowded; ``k`` grows (up to
    ``max_k``) until a fully crowded neighbourhood can get below it (0: never grows). ``trim``:
    share of the most crowded rows left out when the typical crowding is measured.
    ``copy_similarity``: production rows at least this alike count once.
    """

    def __init__(self, *, k: int = 10, alpha: float = 1e-4, max_k: int = 50, trim: float = 0.1,
                 copy_similarity: float = 0.98, seed: int = 0):
        self.k = k
        self.alpha = alpha
        self.max_k = max_k
        self.trim = trim
        self.copy_similarity = copy_similarity
        self.seed = seed

    def fit_score(self, queries: np.ndarray, training_vectors: np.ndarray, *, training_graph: KnnGraph,
                  progress: Progress = NULL_PROGRESS) -> CrowdingScores:
        """Score ``queries`` (the production rows) and learn their typical crowding
        (``expected_share_``) from them. ``training_graph``: each query's nearest rows of
        ``training_vectors``, nearest first, as :func:`~dataaudit.neighbors.query_knn` gives them
        (searched again only when ``k`` must grow past its width)."""
        queries = np.asarray(queries, dtype=np.float32)
        training_rows = len(training_vectors)
        # The typical share is never below random mixing, so k is sized for that before counting.
        k = self._reachable_k(self.k, _mixing(len(queries), training_rows), len(queries), training_rows)
        production_graph = build_knn(queries, k=k, seed=self.seed, progress=progress)
        representative = _first_copy(production_graph, self.copy_similarity)
        kept = np.unique(representative)
        if len(kept) < len(queries):  # score the distinct rows; copies take their first row's score
            production_graph = build_knn(queries[kept], k=k, seed=self.seed, progress=progress)
            training_graph = KnnGraph(indices=training_graph.indices[kept], similarities=training_graph.similarities[kept])
        self.distinct_rows_ = len(kept)
        scores = self._score(production_graph, self._wide(training_graph, training_vectors, queries[kept], k), training_rows, k)
        wider = self._reachable_k(self.k_, self.expected_share_, len(kept), training_rows)
        if wider > self.k_:  # production crowds itself more than mixing says: count more, once
            production_graph = build_knn(queries[kept], k=wider, seed=self.seed, progress=progress)
            training_graph = self._wide(training_graph, training_vectors, queries[kept], wider)
            scores = self._score(production_graph, training_graph, training_rows, wider)
        position = np.searchsorted(kept, representative)
        return CrowdingScores(count=scores.count[position], gap_score=scores.gap_score[position])

    def _reachable_k(self, k: int, share: float, distinct: int, training_rows: int) -> int:
        """The fewest neighbours, at least ``k``, at which ``share ** k < alpha`` (below that even
        a fully crowded row is no gap); ``k`` itself when that needs more than ``max_k`` or the
        rows there are, since counting more would cost a wider graph and still never fire."""
        if self.alpha <= 0 or share <= 0 or share >= 1 or share**k < self.alpha:
            return k
        needed = math.floor(math.log(self.alpha) / math.log(share)) + 1
        return needed if needed <= min(self.max_k, distinct - 1 + training_rows) else k

    def _wide(self, training_graph: KnnGraph, training_vectors: np.ndarray, queries: np.ndarray, k: int) -> KnnGraph:
        """``training_graph``, or the queries' ``k`` nearest training rows when it is narrower."""
        if training_graph.indices.shape[1] >= min(k, len(training_vectors)):
            return training_graph
        return query_knn(training_vectors, queries, k=k, seed=self.seed)

    def _score(self, production_graph: KnnGraph, training_graph: KnnGraph, training_rows: int, k: int) -> CrowdingScores:
        m = len(production_graph.indices)
        width = min(k, training_graph.indices.shape[1])
        # Training neighbours first, so a tie in similarity counts against crowding.
        similarity = np.hstack([
            np.where(training_graph.indices[:, :width] >= 0, training_graph.similarities[:, :width], -np.inf),
            np.where(production_graph.indices >= 0, production_graph.similarities, -np.inf),
        ]).astype(np.float64)
        is_production = np.zeros(similarity.shape, dtype=bool)
        is_production[:, width:] = True
        self.k_ = min(k, similarity.shape[1])
        order = np.argsort(-similarity, axis=1, kind="stable")[:, : self.k_]
        chosen = np.take_along_axis(is_production, order, axis=1) & np.isfinite(np.take_along_axis(similarity, order, axis=1))
        count = chosen.sum(axis=1).astype(np.int64)
        self.expected_share_ = self._expected_share(count, m, training_rows)
        if m == 0 or self.k_ == 0:
            return CrowdingScores(count=count, gap_score=np.full(m, np.nan))
        return CrowdingScores(count=count, gap_score=binomial_tail(self.k_, self.expected_share_)[count])

    def _expected_share(self, count: np.ndarray, m: int, training_rows: int) -> float:
        mixing = _mixing(m, training_rows)
        if len(count) == 0 or self.k_ == 0:
            return mixing
        kept = np.sort(count)[: max(1, math.ceil((1 - self.trim) * len(count)))]
        return float(min(1.0, max(mixing, kept.mean() / self.k_)))


def _mixing(m: int, training_rows: int) -> float:
    """The share of production among a production row's neighbours when the two are mixed at random."""
    return (m - 1) / (training_rows + m - 1) if training_rows + m > 1 else 0.0


def _first_copy(graph: KnnGraph, similarity: float) -> np.ndarray:
    """Per row, the first row of its group of copies (rows linked by neighbours at least
    ``similarity`` alike); itself when it has none."""
    n = len(graph.indices)
    row, column = np.nonzero((graph.indices >= 0) & (graph.similarities >= similarity))
    groups = group_labels(n, row, graph.indices[row, column])
    return np.where(groups >= 0, groups, np.arange(n))
