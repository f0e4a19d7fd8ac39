"""How well the training set covers a text, calibrated on the training set itself.

A raw cosine threshold ("below 0.6 is uncovered") means something different for every model
and every dataset, and it ignores density: in a region packed with near-paraphrases a query at
0.8 sits well outside the crowd, while in a sparse region 0.6 is as close as training rows get
to each other. So the score is relative twice over:

- **local density.** A text's *statistic* is its mean similarity to its ``k`` nearest training
  rows minus the same quantity averaged over its ``density_k`` nearest training rows, each
  measured leave-one-out against the rest of training. It asks "is this text as close to
  training as the training rows around it are to each other?"
- **own distribution.** Every training row gets the same statistic leave-one-out; a text's
  ``gap_score`` is the share of training rows whose statistic is at most its own (an empirical
  CDF in [0, 1], lower = less covered). Training data is by construction "covered", so a
  ``gap_score`` of 0.05 means only 5% of training rows are as isolated from the rest of training
  as this text is from training.

On CLINC150 (bench/bench_coverage_clinc.py) this density adjustment lifts the AUROC for
out-of-scope queries above plain nearest-neighbour similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataaudit.neighbors import KnnGraph, build_knn, query_knn
from dataaudit.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class CoverageScores:
    """Per query row; NaN where there is no training row or too few to calibrate."""

    nearest: np.ndarray  # (m,) int64 position of the most similar training row, -1 when none
    similarity: np.ndarray  # (m,) float64 cosine to that row
    statistic: np.ndarray  # (m,) float64 density-adjusted similarity (see module docstring)
    gap_score: np.ndarray  # (m,) float64 in [0, 1]: share of training rows at most as covered


def percentile_of(calibration: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``calibration`` values ``<=`` each value: an empirical CDF, monotone, in [0, 1]."""
    ordered = np.sort(np.asarray(calibration, dtype=np.float64))
    values = np.asarray(values, dtype=np.float64)
    if ordered.size == 0:
        return np.full(values.shape, np.nan)
    scores = np.searchsorted(ordered, values, side="right") / ordered.size
    return np.where(np.isnan(values), np.nan, scores)


def graph_without(graph: KnnGraph, removed: np.ndarray, *, width: int) -> KnnGraph | None:
    """The ``width`` nearest neighbours among the rows not ``removed`` (a mask), read off ``graph``.

    Rows are renumbered to their positions among the kept rows. Exact whenever ``graph`` is and
    every kept row still has ``width`` kept neighbours in it; when one has fewer, None (build one).
    """
    kept = np.flatnonzero(~removed)
    indices, similarities = graph.indices[kept], graph.similarities[kept]
    usable = (indices >= 0) & ~removed[np.clip(indices, 0, None)]
    if len(kept) == 0 or width > len(kept) - 1 or (usable.sum(axis=1) < width).any():
        return None
    order = np.argsort(~usable, axis=1, kind="stable")[:, :width]  # usable first, nearest first
    position = np.full(len(removed), -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    return KnnGraph(indices=position[np.take_along_axis(indices, order, axis=1)],
                    similarities=np.take_along_axis(similarities, order, axis=1))


def held_out_graph(graph: KnnGraph, held_out: np.ndarray, reference: np.ndarray, queries: np.ndarray, *,
                   width: int) -> KnnGraph:
    """Each held-out row's ``width`` nearest rows among the others, read off the whole set's ``graph``.

    ``reference`` holds the vectors of the rows not ``held_out`` (a mask), in order, and
    ``queries`` those of the held-out rows; neighbours are numbered by position in
    ``reference``. A held-out row with fewer than ``width`` such neighbours in ``graph`` is
    searched exactly. Why: scoring a held-out split against the rest is a second scan of the
    whole training set, while the audit's graph already lists almost every answer.
    """
    if width > graph.indices.shape[1] or width > len(reference):
        return query_knn(reference, queries, k=width)
    rows = np.flatnonzero(held_out)
    position = np.full(len(held_out), -1, dtype=np.int64)
    position[~held_out] = np.arange(int((~held_out).sum()))
    indices, similarities = graph.indices[rows], graph.similarities[rows]
    usable = (indices >= 0) & ~held_out[np.clip(indices, 0, None)]
    order = np.argsort(~usable, axis=1, kind="stable")[:, :width]  # usable first, nearest first
    found = KnnGraph(indices=position[np.take_along_axis(indices, order, axis=1)],
                     similarities=np.take_along_axis(similarities, order, axis=1))
    short = np.flatnonzero(usable.sum(axis=1) < width)
    if len(short) == 0:
        return found
    redo = query_knn(reference, queries[short], k=width)
    indices, similarities = found.indices.copy(), found.similarities.copy()
    indices[short], similarities[short] = redo.indices, redo.similarities
    return KnnGraph(indices=indices, similarities=similarities)


class CoverageScorer:
    """Density-aware coverage of query texts by a reference (training) set.

    ``k``: how many nearest training rows a text's similarity averages over (more is steadier,
    fewer reacts to single near-copies). ``density_k``: how many nearest training rows define
    the local density it is compared with.
    """

    def __init__(self, *, k: int = 10, density_k: int = 15, seed: int = 0):
        self.k = k
        self.density_k = density_k
        self.seed = seed

    def fit(self, reference: np.ndarray, *, knn: KnnGraph | None = None, progress: Progress = NULL_PROGRESS) -> "CoverageScorer":
        """Learn each training row's leave-one-out statistic.

        ``knn`` may be the training set's own kNN graph (self excluded); it is reused when it
        holds enough neighbours, otherwise one is built.
        """
        reference = np.asarray(reference, dtype=np.float32)
        n = len(reference)
        self.reference_ = reference
        self.k_ = max(0, min(self.k, n - 1))
        self.density_k_ = max(0, min(self.density_k, n - 1))
        needed = max(self.k_, self.density_k_)
        if needed == 0:  # 0 or 1 training rows: nothing to be covered by, nothing to calibrate on
            self.own_similarity_ = np.zeros(n, dtype=np.float64)
            self.calibration_ = np.zeros(0, dtype=np.float64)
            self.own_score_ = np.full(n, np.nan)
            return self
        if knn is None or knn.indices.shape[1] < needed:
            knn = build_knn(reference, k=needed, seed=self.seed, progress=progress)
        similarities = knn.similarities.astype(np.float64)
        self.own_similarity_ = similarities[:, : self.k_].mean(axis=1)
        local = self.own_similarity_[knn.indices[:, : self.density_k_]].mean(axis=1)
        own_statistic = self.own_similarity_ - local
        self.calibration_ = np.sort(own_statistic)
        self.own_score_ = percentile_of(self.calibration_, own_statistic)  # each row's leave-one-out gap_score
        return self

    @property
    def is_calibrated(self) -> bool:
        return self.calibration_.size > 0

    def statistic_at(self, quantile: float) -> float | None:
        """The statistic below which a share ``quantile`` of training rows fall."""
        if not self.is_calibrated:
            return None
        return float(np.quantile(self.calibration_, quantile))

    @property
    def width(self) -> int:
        """Neighbours per query that :meth:`score` reads."""
        return max(1, self.k_, self.density_k_)

    def score(self, queries: np.ndarray, *, graph: KnnGraph | None = None,
              progress: Progress = NULL_PROGRESS) -> CoverageScores:
        """``graph``: the queries' :attr:`width` nearest reference rows when already known."""
        queries = np.asarray(queries, dtype=np.float32)
        m = len(queries)
        nearest = np.full(m, -1, dtype=np.int64)
        similarity = np.full(m, np.nan)
        statistic = np.full(m, np.nan)
        if m == 0 or len(self.reference_) == 0:
            return CoverageScores(nearest=nearest, similarity=similarity, statistic=statistic, gap_score=statistic.copy())
        if graph is None:
            graph = query_knn(self.reference_, queries, k=self.width, seed=self.seed, progress=progress)
        nearest = graph.indices[:, 0].astype(np.int64)
        similarity = graph.similarities[:, 0].astype(np.float64)
        if self.is_calibrated:
            own = graph.similarities[:, : self.k_].astype(np.float64).mean(axis=1)
            local = self.own_similarity_[graph.indices[:, : self.density_k_]].mean(axis=1)
            statistic = own - local
        return CoverageScores(
            nearest=nearest,
            similarity=similarity,
            statistic=statistic,
            gap_score=percentile_of(self.calibration_, statistic),
        )
