"""Label-aware coverage: does training cover the *kind of answer* a production prompt needs?

The density score (:mod:`dataaudit.coverage.scoring`) asks how close a prompt is to training
prompts. A prompt of a missing intent whose sibling intents stay in training is close to them,
so it looks covered although no training row teaches its answer. Its nearest training rows tell
it apart: they carry *several* labels (the siblings it sits between), where the neighbours of a
covered prompt mostly agree on one.

So a second statistic, the **label agreement** of a text's ``k`` nearest training rows: the
similarity-weighted share of them that carry their most common label. It is calibrated like the
density score: every training row gets it leave-one-out (its neighbours among the *other*
training rows, read off the audit's kNN graph), and a text's ``label_gap_score`` is the share of
training rows whose neighbours agree at most as much (lower = less covered).

The two scores are combined as a calibrated *or*: a row's combined statistic is
``log(density score) + label_weight · log(label score)`` (Fisher's method, weighted: small when
either is small, smaller when both are), and ``gap_score`` is the share of training rows whose
own statistic is at most that. ``label_weight`` 0.5 was chosen on two benches: at 1.0 the label
view lifts Banking77's missing intents as much but costs CLINC150 out-of-scope AUROC (0.974 →
0.969, in-scope rows between sibling intents get flagged); at 0.5 both improve. So a production prompt
is a gap when it is far from training *or* between classes training keeps apart, and still only
``quantile`` of data drawn like training is flagged.

Measured on Banking77 with 10 intents removed (bench/bench_coverage_banking.py) this ranks the
removed intents' rows above the density score alone; a ridge-softmax's max probability and a
Mahalanobis distance to class centroids (both out of fold) ranked them worse than density alone
on MiniLM vectors and are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataaudit.coverage.scoring import percentile_of
from dataaudit.neighbors import KnnGraph, build_knn, query_knn

#: Floor for a score before its log, so a score of 0 (below every training row) stays finite.
_LOG_FLOOR = 1e-4


@dataclass(frozen=True)
class LabelCoverage:
    """Per query row; ``label_gap_score`` in [0, 1] (NaN when not calibrated)."""

    agreement: np.ndarray  # (m,) similarity-weighted share of the k nearest training rows with their top label
    label_gap_score: np.ndarray  # (m,) share of training rows (leave-one-out) whose neighbours agree at most as much


def label_agreement(neighbour_labels: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Per row, the similarity-weighted share of its neighbours that carry their most common label.

    ``neighbour_labels`` is (n, k) label codes (-1 = no neighbour or no label, not counted).
    Vectorised as a k × k comparison per row (k is small).
    """
    weights = np.where(neighbour_labels >= 0, np.clip(similarities.astype(np.float64), 1e-6, None), 0.0)
    same = (neighbour_labels[:, :, None] == neighbour_labels[:, None, :]) & (neighbour_labels[:, :, None] >= 0)
    support = np.einsum("nij,nj->ni", same, weights)
    total = weights.sum(axis=1)
    return np.where(total > 0, support.max(axis=1) / np.where(total > 0, total, 1.0), np.nan)


class LabelCoverageScorer:
    """How much the labels of a text's nearest training rows agree, calibrated on training.

    ``k``: neighbours that vote (more is steadier; fewer keeps a small class from being outvoted
    by a large neighbour). Training rows without a label never vote.
    """

    def __init__(self, *, k: int = 10, seed: int = 0):
        self.k = k
        self.seed = seed

    def fit(self, reference: np.ndarray, labels: list[str | None] | np.ndarray, *, knn: KnnGraph | None = None
            ) -> "LabelCoverageScorer":
        """Learn each labelled training row's leave-one-out agreement (``own_score_`` holds its
        ``label_gap_score``, NaN for unlabelled rows). ``knn`` may be the training set's own kNN
        graph (self excluded); it is reused when it holds ``k`` neighbours."""
        self.reference_ = np.asarray(reference, dtype=np.float32)
        labels = [None if value is None else str(value) for value in labels]
        names = sorted({value for value in labels if value is not None})
        code_of = {name: code for code, name in enumerate(names)}
        self.codes_ = np.array([code_of.get(value, -1) if value is not None else -1 for value in labels], dtype=np.int64)
        self.classes_ = names
        n = len(self.reference_)
        self.k_ = max(0, min(self.k, n - 1))
        self.own_score_ = np.full(n, np.nan)
        self.calibration_ = np.zeros(0)
        if len(names) < 2 or self.k_ == 0:  # one class: nothing lies "between classes"
            return self
        if knn is None or knn.indices.shape[1] < self.k_:
            knn = build_knn(self.reference_, k=self.k_, seed=self.seed)
        own = self._agreement(knn.indices[:, : self.k_], knn.similarities[:, : self.k_])
        labelled = (self.codes_ >= 0) & ~np.isnan(own)
        self.calibration_ = np.sort(own[labelled])
        self.own_score_[labelled] = percentile_of(self.calibration_, own[labelled])
        return self

    @property
    def is_calibrated(self) -> bool:
        return self.calibration_.size > 0

    def score(self, queries: np.ndarray, *, graph: KnnGraph | None = None) -> LabelCoverage:
        """``graph``: the queries' nearest reference rows (at least ``k_``) when already known."""
        queries = np.asarray(queries, dtype=np.float32)
        if not self.is_calibrated or len(queries) == 0:
            empty = np.full(len(queries), np.nan)
            return LabelCoverage(agreement=empty, label_gap_score=empty.copy())
        if graph is None:
            graph = query_knn(self.reference_, queries, k=self.k_, seed=self.seed)
        agreement = self._agreement(graph.indices[:, : self.k_], graph.similarities[:, : self.k_])
        return LabelCoverage(agreement=agreement, label_gap_score=percentile_of(self.calibration_, agreement))

    def _agreement(self, indices: np.ndarray, similarities: np.ndarray) -> np.ndarray:
        codes = np.where(indices >= 0, self.codes_[np.clip(indices, 0, None)], -1)
        return label_agreement(codes, similarities)


def combined_gap_score(own_density: np.ndarray, own_label: np.ndarray, density: np.ndarray, label: np.ndarray, *,
                       label_weight: float = 0.5) -> np.ndarray:
    """Weighted Fisher combination of two calibrated scores, calibrated again on training rows.

    ``own_*``: each training row's leave-one-out scores; ``density`` / ``label``: the queries'.
    The statistic is ``log(density) + label_weight · log(label)``; a query's combined score is the share of
    training rows whose statistic is at most its own. Where a label score is NaN (no usable
    label) that row's density score stands alone: on both sides it counts as a label score of 1.
    """
    def statistic(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        second = np.where(np.isnan(second), 1.0, second)
        return np.log(np.maximum(first, _LOG_FLOOR)) + label_weight * np.log(np.maximum(second, _LOG_FLOOR))

    own = statistic(own_density, own_label)
    return percentile_of(own[~np.isnan(own)], statistic(density, label))
