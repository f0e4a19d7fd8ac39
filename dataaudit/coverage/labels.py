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
is a gap when it is far from training *or* between classes training keeps apart; the threshold
that flags ``alpha`` of data drawn like training is set on the whole decision
(:mod:`dataaudit.coverage.calibration`).

A second label view, **centroids**: the Mahalanobis distance to the nearest class centroid in
the space whitened by the classes' shared within-class covariance (shrunk towards the identity,
as in LDA and in the out-of-scope detectors published on CLINC150). It is calibrated on
training rows out of fold (each fold's centroids and covariance come from the other folds),
and the two label views are combined into ``label_gap_score`` by Fisher's method. The
neighbours see a prompt between sibling classes; the centroids see a prompt off every class's
main directions and call one near a class centroid covered. Together they flag fewer in-scope
CLINC150 prompts than the neighbours alone (is_gap 8.9% → 8.0%, out-of-scope AUROC 0.976 → 0.979)
at the price of some missing Banking77 siblings (8.0 → 7.6 of 10 removed intents surfaced);
bench/bench_coverage_banking.py and bench/bench_coverage_clinc.py print all three. A
ridge-softmax's out-of-fold max probability or entropy moved neither bench as much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataaudit.coverage.scoring import percentile_of
from dataaudit.features.confident_learning import stratified_folds
from dataaudit.neighbors import KnnGraph, build_knn, query_knn

#: Floor for a score before its log, so a score of 0 (below every training row) stays finite.
_LOG_FLOOR = 1e-4
#: Rows per block when distances to every class centroid are computed (rows × classes floats).
_BLOCK_ROWS = 16_384


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
    return fisher_score([own_density, own_label], [density, label], [1.0, label_weight])


class CentroidCoverageScorer:
    """How close a text is to its nearest class centroid, in the space whitened by the shared
    within-class covariance, calibrated on training rows out of fold.

    ``shrinkage``: share of the covariance replaced by its mean variance times the identity
    (LDA's shrinkage; it keeps the whitening stable with few rows per dimension). ``folds``:
    out-of-fold splits for the training rows' own scores. Costs one d × d eigendecomposition per
    fold and rows × classes distances, in row blocks: linear in rows.
    """

    def __init__(self, *, shrinkage: float = 0.5, folds: int = 5, seed: int = 0):
        self.shrinkage = shrinkage
        self.folds = folds
        self.seed = seed

    def fit(self, reference: np.ndarray, labels: list[str | None] | np.ndarray) -> "CentroidCoverageScorer":
        """Learn the centroids and whitening on all labelled rows, and each labelled row's
        out-of-fold ``label_gap_score`` (``own_score_``; NaN for unlabelled rows)."""
        reference = np.asarray(reference, dtype=np.float32)
        labels = [None if value is None else str(value) for value in labels]
        self.classes_ = sorted({value for value in labels if value is not None})
        code_of = {name: code for code, name in enumerate(self.classes_)}
        codes = np.array([code_of[value] if value is not None else -1 for value in labels], dtype=np.int64)
        labelled = np.flatnonzero(codes >= 0)
        self.own_score_ = np.full(len(reference), np.nan)
        self.calibration_ = np.zeros(0)
        folds = min(self.folds, len(labelled))
        if len(self.classes_) < 2 or folds < 2:
            return self
        x, y = reference[labelled], codes[labelled]
        fold_of = stratified_folds(y, folds=folds, seed=self.seed)
        # One pass for the moments of every fold; each fold's model is fitted on the others' sums.
        parts = [_moments(x[fold_of == fold], y[fold_of == fold], len(self.classes_)) for fold in range(folds)]
        total = [sum(part[i] for part in parts) for i in range(3)]
        self.model_ = _model_from(*total, self.shrinkage)
        own = np.full(len(y), np.nan)
        for fold, part in enumerate(parts):
            test = fold_of == fold
            if test.any() and not test.all():
                rest = [whole - mine for whole, mine in zip(total, part)]
                own[test] = _nearest_centroid_statistic(_model_from(*rest, self.shrinkage), x[test])
        self.calibration_ = np.sort(own[~np.isnan(own)])
        self.own_score_[labelled] = percentile_of(self.calibration_, own)
        return self

    @property
    def is_calibrated(self) -> bool:
        return self.calibration_.size > 0

    def score(self, queries: np.ndarray) -> np.ndarray:
        """Each query's ``label_gap_score`` by this view (NaN when not calibrated)."""
        queries = np.asarray(queries, dtype=np.float32)
        if not self.is_calibrated or len(queries) == 0:
            return np.full(len(queries), np.nan)
        return percentile_of(self.calibration_, _nearest_centroid_statistic(self.model_, queries))


def _moments(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows per class, per-class sums, Σ x xᵀ): additive, so a fold's complement is total − fold."""
    from scipy import sparse

    sums = np.zeros((n_classes, x.shape[1]))
    scatter = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, len(x), _BLOCK_ROWS):
        block, codes = x[start : start + _BLOCK_ROWS].astype(np.float64), y[start : start + _BLOCK_ROWS]
        owner = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_classes, len(codes)))
        sums += owner @ block  # per-class sums as one sparse product (np.add.at is slow at a million rows)
        scatter += block.T @ block
    return np.bincount(y, minlength=n_classes).astype(np.float64), sums, scatter


def _whitened_centroids(x: np.ndarray, y: np.ndarray, n_classes: int, shrinkage: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _model_from(*_moments(x, y, n_classes), shrinkage)


def _model_from(counts: np.ndarray, sums: np.ndarray, scatter: np.ndarray, shrinkage: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(whitening matrix, whitened centroids of the classes present, their squared norms)."""
    present = counts > 0
    centroids = sums[present] / counts[present, None]
    # within-class scatter = Σ x xᵀ − Σ_c n_c μ_c μ_cᵀ (no rows × d residual matrix)
    covariance = (scatter - (centroids * counts[present, None]).T @ centroids) / counts.sum()
    dim = covariance.shape[0]
    ridge = max(float(np.trace(covariance)) / dim, 1e-12)
    covariance = (1 - shrinkage) * covariance + shrinkage * ridge * np.eye(dim)
    values, vectors = np.linalg.eigh(covariance)
    whitening = vectors / np.sqrt(np.maximum(values, ridge * 1e-6))
    whitened = centroids @ whitening
    return whitening, whitened, (whitened**2).sum(axis=1)


def _nearest_centroid_statistic(model: tuple[np.ndarray, np.ndarray, np.ndarray], queries: np.ndarray) -> np.ndarray:
    """Minus the squared Mahalanobis distance to the nearest centroid (higher = more covered)."""
    whitening, centroids, norms = model
    statistic = np.empty(len(queries))
    for start in range(0, len(queries), _BLOCK_ROWS):
        z = queries[start : start + _BLOCK_ROWS].astype(np.float64) @ whitening
        distances = (z**2).sum(axis=1)[:, None] - 2 * z @ centroids.T + norms[None, :]
        statistic[start : start + len(z)] = -distances.min(axis=1)
    return statistic


def fisher_score(own: list[np.ndarray], queries: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Weighted Fisher combination of calibrated scores, calibrated again on the training rows.

    ``own[i]`` / ``queries[i]``: training rows' (leave-one-out or out-of-fold) and the queries'
    scores of view ``i``. A NaN score counts as 1 (that view has nothing to say about the row).
    """
    def statistic(scores: list[np.ndarray]) -> np.ndarray:
        value = sum(weight * np.log(np.maximum(np.where(np.isnan(score), 1.0, score), _LOG_FLOOR))
                    for weight, score in zip(weights, scores))
        return np.where(np.all([np.isnan(score) for score in scores], axis=0), np.nan, value)  # no view: no score

    calibration = statistic(own)
    return percentile_of(calibration[~np.isnan(calibration)], statistic(queries))


def label_view_scores(neighbours: LabelCoverageScorer, neighbour_scores: np.ndarray, reference: np.ndarray,
                      labels: list[str | None], queries: np.ndarray, *, view: str, shrinkage: float, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(training rows' own, queries') label score of ``view``: ``"neighbours"`` (the fitted
    kNN agreement, whose query scores are ``neighbour_scores``), ``"centroids"``, or ``"both"``
    (Fisher's method over the two, calibrated again on training)."""
    if view == "neighbours":
        return neighbours.own_score_, neighbour_scores
    centroids = CentroidCoverageScorer(shrinkage=shrinkage, seed=seed).fit(reference, labels)
    if view == "centroids":
        return centroids.own_score_, centroids.score(queries)
    own_views, views = [neighbours.own_score_, centroids.own_score_], [neighbour_scores, centroids.score(queries)]
    return fisher_score(own_views, own_views, [1.0, 1.0]), fisher_score(own_views, views, [1.0, 1.0])
