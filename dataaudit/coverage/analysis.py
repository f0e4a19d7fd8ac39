"""The coverage analysis: which production traffic the training set does not cover.

It answers four questions, each as data:

- ``coverage``: per production row, its input ``line`` (and ``source_file`` for shards), its nearest
  training row, a calibrated ``gap_score``, how crowded by other production rows it is (see
  :mod:`dataaudit.coverage.crowding`) and whether it is a gap (see :mod:`dataaudit.coverage.scoring`);
- ``gaps``: the uncovered rows grouped into topics, named by keywords, with representative
  prompts and how many examples to collect (see :mod:`dataaudit.coverage.gaps`);
- ``cluster_coverage``: per training cluster, how much production traffic lands on it compared
  with how much training data it holds (under-covered and unused clusters);
- ``summary``: the numbers, including drift (see :mod:`dataaudit.coverage.drift`) and the
  *evaluation gap*: how much worse production is covered than a held-out split carved from
  training, i.e. how much an in-distribution eval set flatters the model.

This module makes the per-row decision; :mod:`dataaudit.coverage.results` builds the tables
and summary numbers from it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from dataaudit.coverage.calibration import (
    GapCalibration,
    calibration_folds,
    combined_statistic,
    conformal_p_values,
    fold_masks,
    near_copy_groups,
    regrouped_folds,
)
from dataaudit.coverage.crowding import CrowdingScorer, CrowdingScores
from dataaudit.coverage.describe import contribution_sentence, threshold_summary
from dataaudit.coverage.drift import drift_auc
from dataaudit.coverage.gaps import GapClusterer
from dataaudit.coverage.labels import LabelCoverageScorer, combined_gap_score, label_view_scores
from dataaudit.coverage.results import (
    CLUSTER_COVERAGE_SCHEMA,
    COVERAGE_SCHEMA,
    GAPS_SCHEMA,
    CoverageResult,
    _cluster_coverage,
    _clusters_with,
    _evaluation_gap,
    _gaps_frame,
    _nullable,
    _share,
)
from dataaudit.coverage.scoring import CoverageScorer, CoverageScores, graph_without, held_out_graph
from dataaudit.neighbors import KnnGraph, query_knn
from dataaudit.params import OPTIONAL_SEED, Component, Interval, Options

if TYPE_CHECKING:
    from dataaudit.context import AuditContext
    from dataaudit.dataset import Dataset

__all__ = ["CLUSTER_COVERAGE_SCHEMA", "COVERAGE_SCHEMA", "GAPS_SCHEMA", "CoverageAnalysis", "CoverageResult"]

logger = logging.getLogger(__name__)

class CoverageAnalysis(Component):
    """Measure how well the training set covers production traffic.

    - ``alpha``: the share of in-distribution production rows flagged as gaps (default 5%). The
      signals (density, labels, crowding) combine into one statistic whose threshold is
      calibrated on training rows held out from the reference (split-conformal; cross-conformal
      when training is small), so when production is drawn like training at most ``alpha`` of it
      is flagged (see :mod:`dataaudit.coverage.calibration`). ``gap_score`` is the row's
      conformal p-value: a gap when ``gap_score <= alpha``.
    - ``threshold``: instead, a fixed cosine similarity to the nearest training row below which a
      row is a gap — for when you know your model's scale. ``gap_score`` is reported either way.
    - ``k`` / ``density_k``: neighbours averaged for a row's similarity / for the local density
      it is compared with (see :mod:`dataaudit.coverage.scoring`).
    - ``use_labels``: when training rows carry labels, add the label-aware score (the labels of the
      row's nearest training rows disagree: it falls between classes, see
      :mod:`dataaudit.coverage.labels`) to the density score; ``gap_score`` is then their
      calibrated combination. ``label_k``: the neighbours whose labels vote; ``label_weight``: the
      label score's weight in the combination (see :func:`~dataaudit.coverage.labels.combined_gap_score`).
      ``label_view``: ``"neighbours"``, ``"centroids"`` (shared covariance shrunk by
      ``centroid_shrinkage``) or ``"both"`` (see :func:`~dataaudit.coverage.labels.label_view_scores`).
    - ``crowding_alpha``: crowding's weight in the combined statistic: a row crowded to a
      ``crowding_gap_score`` near this is a gap (exactly this when the calibration lands on
      ``alpha``): among its ``crowding_k`` nearest rows in training ∪ production, far more are
      production than this production set's typical crowding makes likely (see
      :mod:`dataaudit.coverage.crowding`). It finds an intent training lacks whose sibling intents
      it keeps. 0 leaves crowding out (the score is still reported). Calibrated rule only. When
      production is large next to training, more neighbours are counted (summary ``crowding_k``),
      else even a fully crowded row could not get below ``crowding_alpha``.
    - ``growth_crowding``: a row that is no gap by itself joins a gap topic it is closer to than
      to training (see :mod:`dataaudit.coverage.gaps`) only when its ``crowding_gap_score`` is at
      most this: rows of a missing topic crowd each other, an in-distribution row beside a gap
      does not (1: any row may join). 0.1 was measured on the benches: 0.05 cost Banking77 2 of 20
      removed intents over seeds 0-1, ungated growth cost CLINC150 0.7 points of in-scope rows.
    - ``min_gap_cluster_size``: fewest uncovered rows that make a gap topic (None: 3, growing
      slowly with the number of gaps).
    - ``min_collect``: the least a gap topic's collection recommendation can be.
    - ``under_covered_ratio`` / ``min_cluster_rows``: a training cluster is ``under_covered`` when
      its share of production is at least this many times its share of training and at least
      ``min_cluster_rows`` production rows land on it; ``unused`` when none do although
      ``min_cluster_rows`` would be expected from its training share.
    - ``holdout_share`` / ``holdout_max_rows`` / ``min_calibration_rows``: share of training held
      out to calibrate ``alpha`` (and to measure the evaluation gap), at most this many rows; when
      one such split holds fewer than ``min_calibration_rows``, folds of that share are held out
      in turn until ``holdout_max_rows`` (or every) training row has been held out once.
    - ``group_similarity``: training rows at least this alike (chained) are held out together
      when the density and label scores are calibrated (default: copies, the same request typed
      again). 0.85 (near-paraphrases) suits production collected apart from training, at a cost
      where it is drawn like training (see :mod:`dataaudit.coverage.calibration`).
    - ``crowding_group_similarity``: the same for crowding's calibration (keep it at copies: a
      held-out burst of paraphrases would crowd itself).
    - ``drift_max_rows``: rows per side (subsampled, seeded) for the drift classifier.
    - ``seed``: None takes the audit's seed.
    """

    def __init__(
        self,
        *,
        threshold: float | None = None,
        alpha: float = 0.05,
        k: int = 10,
        density_k: int = 15,
        use_labels: bool = True,
        label_k: int = 10,
        label_weight: float = 0.5,
        label_view: str = "both",
        centroid_shrinkage: float = 0.5,
        crowding_k: int = 10,
        crowding_alpha: float = 1e-4,
        growth_crowding: float = 0.1,
        min_gap_cluster_size: int | None = None,
        min_collect: int = 10,
        under_covered_ratio: float = 2.0,
        min_cluster_rows: int = 5,
        holdout_share: float = 0.1,
        holdout_max_rows: int = 10_000,
        min_calibration_rows: int = 2_000,
        group_similarity: float = 0.98,
        crowding_group_similarity: float = 0.98,
        drift_max_rows: int = 10_000,
        seed: int | None = None,
    ):
        self.threshold = threshold
        self.alpha = alpha
        self.k = k
        self.density_k = density_k
        self.use_labels = use_labels
        self.label_k = label_k
        self.label_weight = label_weight
        self.label_view = label_view
        self.centroid_shrinkage = centroid_shrinkage
        self.crowding_k = crowding_k
        self.crowding_alpha = crowding_alpha
        self.growth_crowding = growth_crowding
        self.min_gap_cluster_size = min_gap_cluster_size
        self.min_collect = min_collect
        self.under_covered_ratio = under_covered_ratio
        self.min_cluster_rows = min_cluster_rows
        self.holdout_share = holdout_share
        self.holdout_max_rows = holdout_max_rows
        self.min_calibration_rows = min_calibration_rows
        self.group_similarity = group_similarity
        self.crowding_group_similarity = crowding_group_similarity
        self.drift_max_rows = drift_max_rows
        self.seed = seed

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "threshold": [Interval(float, -1, 1), None],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "k": [Interval(int, 1, None)],
        "density_k": [Interval(int, 1, None)],
        "growth_crowding": [Interval(float, 0, 1)],
        "min_gap_cluster_size": [Interval(int, 2, None), None],
        "min_collect": [Interval(int, 0, None)],
        "under_covered_ratio": [Interval(float, 0, None, closed="neither")],
        "min_cluster_rows": [Interval(int, 0, None)],
        "holdout_share": [Interval(float, 0, 1, closed="neither")],
        "holdout_max_rows": [Interval(int, 1, None)],
        "min_calibration_rows": [Interval(int, 1, None)],
        "group_similarity": [Interval(float, 0, 1, closed="right")],
        "crowding_group_similarity": [Interval(float, 0, 1, closed="right")],
        "drift_max_rows": [Interval(int, 1, None)],
        "seed": OPTIONAL_SEED,
        "use_labels": [bool],
        "label_k": [Interval(int, 1, None)],
        "label_weight": [Interval(float, 0, None)],
        "label_view": [Options({"neighbours", "centroids", "both"})],
        "centroid_shrinkage": [Interval(float, 0, 1, closed="right")],
        "crowding_k": [Interval(int, 1, None)],
        "crowding_alpha": [Interval(float, 0, 1)],
    }

    def run(self, ctx: "AuditContext", production: "Dataset") -> CoverageResult:
        """Score, calibrate and group ``production`` against the audit's training set in ``ctx``.

        The training embeddings, kNN graph and clustering come from ``ctx`` (computed once for
        the whole audit); only the production prompts are embedded here.
        """
        if self.seed is None:  # used on its own, outside an audit that passes its seed
            return self.with_seed(ctx.seed).run(ctx, production)
        not_computed: dict[str, str] = {}
        summary: dict[str, Any] = {
            "production_rows": len(production),
            "training_rows": len(ctx.dataset),
            "params": self.get_params(),
            "not_computed": not_computed,
        }
        if len(production) == 0:
            not_computed["everything"] = "production has no rows"
            return CoverageResult(summary=summary)

        train_vectors = ctx.embeddings("prompt")
        prompts = production.prompts
        production_vectors = ctx.embed_texts(prompts, stage="embed_production")
        train_ids = ctx.dataset.frame.get_column("row").to_numpy()
        production_ids = production.frame.get_column("row").to_numpy()

        train_labels = self._training_labels(ctx.dataset)
        with ctx.stage("coverage_score"):
            scorer = self._scorer().fit(train_vectors, knn=ctx.knn("prompt") if len(train_vectors) > 1 else None, progress=ctx.progress)
            # Each production row's nearest training rows, searched once for all three scores.
            graph = query_knn(train_vectors, production_vectors, k=max(scorer.width, self.label_k, self.crowding_k),
                              seed=self.seed, progress=ctx.progress)
            density = scorer.score(production_vectors, graph=graph, progress=ctx.progress)
        with ctx.stage("coverage_label_score"):
            label_scorer, label_scores, scores = self._with_labels(
                scorer, density, train_vectors, train_labels, production_vectors,
                knn=ctx.knn("prompt") if train_labels is not None else None, query_graph=graph,
            )
        with ctx.stage("coverage_crowding"):
            crowding_scorer = self._crowding_scorer()
            crowding = crowding_scorer.fit_score(production_vectors, train_vectors, training_graph=graph, progress=ctx.progress)
        with ctx.stage("coverage_calibration"):
            calibration = self._calibrate(train_vectors, train_labels, ctx) if self._crowding_applies(scorer) else None
        signals = scores  # density + labels, before the combination
        statistic = combined_statistic(scores.gap_score, crowding.gap_score, scores.similarity,
                                       crowding_weight=self._crowding_weight())
        if calibration is not None:
            scores = dataclasses.replace(scores, gap_score=conformal_p_values(calibration.held_out, statistic))
        individual_gap = self._is_gap(scorer, scores, calibration)
        summary["threshold"] = threshold_summary(self, scorer, label_scorer, calibration)
        if len(train_vectors) == 0:
            not_computed["similarity"] = "training has no rows: every production row is a gap"
        if not scorer.is_calibrated and self.threshold is None:
            not_computed["gap_score"] = "training has fewer than 2 rows: no neighbour distribution to calibrate on"
        elif calibration is None and self.threshold is None:
            not_computed["gap_decision"] = "too few training rows to hold some out and calibrate the rate on: no row is flagged"

        with ctx.stage("coverage_gap_clusters"):
            clusterer = GapClusterer(min_cluster_size=self.min_gap_cluster_size, seed=self.seed)
            gap_cluster = clusterer.fit_predict(
                production_vectors, individual_gap, scores.similarity, reference=train_vectors, progress=ctx.progress,
                joinable=self._joinable(crowding),
            )
        is_gap = individual_gap | clusterer.near_gap_  # the rows the gap clusters grew to, in a topic or not

        has_training = len(train_vectors) > 0
        clustering = ctx.clustering if has_training else None
        row_cluster = (
            clustering.nearest_cluster[scores.nearest] if clustering is not None else np.full(len(prompts), -1, dtype=np.int64)
        )
        coverage = pl.DataFrame(
            {
                "row": production_ids,
                "line": production.frame.get_column("line"),
                "nearest_row": [int(train_ids[i]) if i >= 0 else None for i in scores.nearest],
                "similarity": _nullable(scores.similarity),
                "density_gap_score": _nullable(density.gap_score),
                "label_gap_score": _nullable(label_scores),
                "crowding_gap_score": _nullable(crowding.gap_score),
                "gap_score": _nullable(scores.gap_score),
                "is_gap": is_gap,
                "gap_cluster": [int(c) if c >= 0 else None for c in gap_cluster],
                "prompt": prompts,
            },
            schema=COVERAGE_SCHEMA,
        )
        if production.is_sharded:  # provenance, as training rows carry it in rows.parquet
            coverage = coverage.with_columns(production.source_files())
        gaps = _gaps_frame(ctx.dataset, prompts, production_vectors, gap_cluster, row_cluster, clustering,
                           min_collect=self.min_collect, seed=self.seed)
        cluster_coverage = _cluster_coverage(clustering, row_cluster, is_gap, under_covered_ratio=self.under_covered_ratio,
                                             min_cluster_rows=self.min_cluster_rows)
        if clustering is None:
            not_computed["cluster_coverage"] = "training has no rows"

        with ctx.stage("coverage_drift"):
            drift = drift_auc(train_vectors, production_vectors, max_rows=self.drift_max_rows, seed=self.seed, progress=ctx.progress)
        if drift.auc is None:
            not_computed["drift"] = drift.interpretation

        with ctx.stage("coverage_evaluation_gap"):
            evaluation_gap = _evaluation_gap(len(train_vectors), calibration, scores, individual_gap)
        if "skipped" in evaluation_gap:
            not_computed["evaluation_gap"] = evaluation_gap["skipped"]

        calibrated_scores = scores.gap_score[~np.isnan(scores.gap_score)]
        summary.update(
            {
                "gap_rows": int(is_gap.sum()),
                "gap_share": _share(int(is_gap.sum()), len(prompts)),
                "individually_uncovered_rows": int(individual_gap.sum()),
                **self._contributions(calibration, density, label_scores, signals, crowding, label_scorer is not None),
                "crowding_expected_share": round(crowding_scorer.expected_share_, 4),
                "crowding_k": int(crowding_scorer.k_),
                "rows_added_by_gap_clusters": int((is_gap & ~individual_gap).sum()),
                "mean_gap_score": round(float(calibrated_scores.mean()), 4) if calibrated_scores.size else None,
                "gap_clusters": int(gaps.height),
                "gap_rows_in_clusters": int((gap_cluster >= 0).sum()),
                "isolated_gap_rows": int((is_gap & (gap_cluster < 0)).sum()),
                "min_gap_cluster_size": int(clusterer.min_cluster_size_),
                "examples_to_collect": int(gaps.get_column("collect").sum()) if gaps.height else 0,
                "under_covered_clusters": _clusters_with(cluster_coverage, "under_covered"),
                "unused_clusters": _clusters_with(cluster_coverage, "unused"),
                "drift": drift.as_dict(),
                "evaluation_gap": evaluation_gap,
            }
        )
        summary["threshold"]["description"] += contribution_sentence(self, summary)
        logger.info(
            "coverage: %d of %d production rows uncovered, %d gap clusters, drift AUC %s",
            summary["gap_rows"], len(prompts), gaps.height, summary["drift"]["auc"],
        )
        return CoverageResult(coverage=coverage, gaps=gaps, cluster_coverage=cluster_coverage, summary=summary)

    # -- per-row decision ----------------------------------------------------------------
    def _scorer(self) -> CoverageScorer:
        return CoverageScorer(k=self.k, density_k=self.density_k, seed=self.seed)

    def _crowding_scorer(self) -> CrowdingScorer:
        return CrowdingScorer(k=self.crowding_k, alpha=self.crowding_alpha, seed=self.seed)

    def _crowding_applies(self, scorer: CoverageScorer) -> bool:
        """Tell whether crowding joins the rule: the calibrated one only; a fixed threshold stands alone."""
        return self.threshold is None and scorer.is_calibrated

    def _training_labels(self, dataset: "Dataset") -> list[str | None] | None:
        """Return the training labels when the label-aware score applies (labelled data, calibrated rule)."""
        if not self.use_labels or self.threshold is not None or not dataset.has_labels:
            return None
        return dataset.frame.get_column("label").to_list()

    def _with_labels(
        self, scorer: CoverageScorer, density: CoverageScores, train_vectors: np.ndarray,
        train_labels: list[str | None] | None, queries: np.ndarray, *, knn: KnnGraph | None,
        query_graph: KnnGraph,
    ) -> tuple[LabelCoverageScorer | None, np.ndarray, CoverageScores]:
        """Add the label score to the density scores of ``queries``.

        Returns the label scorer, the label score and the scores with ``gap_score`` the
        calibrated union of density and label scores; the density scores alone when labels do
        not apply. ``query_graph``: the queries' nearest training rows (searched again if too narrow).
        """
        nothing = np.full(len(queries), np.nan)
        if train_labels is None or not scorer.is_calibrated:
            return None, nothing, density
        label_scorer = LabelCoverageScorer(k=self.label_k, seed=self.seed).fit(train_vectors, train_labels, knn=knn)
        if not label_scorer.is_calibrated:
            return None, nothing, density
        enough = query_graph.indices.shape[1] >= label_scorer.k_
        own_label, label = label_view_scores(
            label_scorer, label_scorer.score(queries, graph=query_graph if enough else None).label_gap_score,
            train_vectors, train_labels, queries, view=self.label_view, shrinkage=self.centroid_shrinkage, seed=self.seed)
        combined = combined_gap_score(scorer.own_score_, own_label, density.gap_score, label,
                                      label_weight=self.label_weight)
        return label_scorer, label, dataclasses.replace(density, gap_score=combined)

    def _is_gap(self, scorer: CoverageScorer, scores: CoverageScores, calibration: GapCalibration | None) -> np.ndarray:
        """Flag rows below the fixed similarity, or with a p-value at most ``alpha``; no training = all gaps."""
        if len(scorer.reference_) == 0:
            return np.ones(len(scores.similarity), dtype=bool)
        if self.threshold is not None:
            return scores.similarity < self.threshold
        if calibration is None:
            return np.zeros(len(scores.similarity), dtype=bool)
        return scores.gap_score <= self.alpha

    def _crowding_weight(self) -> float:
        """Weigh crowding in the combined statistic so that alone it flags a row near ``crowding_alpha``."""
        return self.crowding_alpha / self.alpha

    def _joinable(self, crowding: CrowdingScores) -> np.ndarray:
        """Mark the rows that may join a gap topic by growth: crowded enough (see ``growth_crowding``)."""
        if self.growth_crowding >= 1:
            return np.ones(len(crowding.gap_score), dtype=bool)
        return np.nan_to_num(crowding.gap_score, nan=1.0) <= self.growth_crowding

    def _calibrate(self, train_vectors: np.ndarray, train_labels: list[str | None] | None,
                   ctx: "AuditContext") -> GapCalibration | None:
        """Compute the combined statistic of training rows held out from the reference.

        Each fold is scored against the rest exactly like production against training, so the
        threshold means the same for both; None when too few rows.
        """
        n = len(train_vectors)
        graph = ctx.knn("prompt")
        groups = near_copy_groups(graph, self.group_similarity) if n > 1 else None
        fold_of = calibration_folds(n, share=self.holdout_share, max_rows=self.holdout_max_rows,
                                    min_rows=self.min_calibration_rows, seed=self.seed, groups=groups)
        folds = int(fold_of.max()) + 1
        density_labels, similarity, crowding = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        # Crowding needs folds of its own only where its groups differ (see _held_out_crowding).
        same_folds = self.crowding_group_similarity == self.group_similarity or self._crowding_weight() <= 0
        for held in fold_masks(fold_of, n):
            scorer = self._scorer()
            # The rest's own kNN graph is read off the audit's (dropping held-out neighbours) rather
            # than rebuilt: at a million rows a rebuild is another ten-minute NN-descent.
            rest_graph = graph_without(graph, held, width=max(scorer.k, scorer.density_k))
            rest_vectors, held_vectors = train_vectors[~held], train_vectors[held]
            scorer.fit(rest_vectors, knn=rest_graph, progress=ctx.progress)
            # The held-out rows' neighbours among the rest are read off the same graph.
            held_graph = held_out_graph(graph, held, rest_vectors, held_vectors,
                                        width=max(scorer.width, self.label_k, self.crowding_k))
            held_scores = scorer.score(held_vectors, graph=held_graph, progress=ctx.progress)
            if train_labels is not None:
                rest_labels = [label for label, out in zip(train_labels, held) if not out]
                _, _, held_scores = self._with_labels(scorer, held_scores, rest_vectors, rest_labels,
                                                      held_vectors, knn=rest_graph, query_graph=held_graph)
            density_labels[held], similarity[held] = held_scores.gap_score, held_scores.similarity
            if same_folds:
                crowding[held] = self._crowding_scorer().fit_score(held_vectors, rest_vectors,
                                                                   training_graph=held_graph).gap_score
        if not same_folds:
            crowding = self._held_out_crowding(train_vectors, graph, fold_of)
        held = fold_of >= 0
        statistic = combined_statistic(density_labels[held], crowding[held], similarity[held],
                                       crowding_weight=self._crowding_weight())
        calibration = GapCalibration.fit(statistic, folds, alpha=self.alpha)
        return calibration if calibration.calibration_rows else None

    def _held_out_crowding(self, train_vectors: np.ndarray, graph: KnnGraph, fold_of: np.ndarray) -> np.ndarray:
        """Crowding of the same held-out rows, regrouped into folds that keep only copies together.

        A fold of whole paraphrase groups crowds itself (its rows are each other's neighbours
        and all "production"), which no production row of a covered topic does.
        """
        n = len(train_vectors)
        crowding = np.full(n, np.nan)
        if self._crowding_weight() <= 0:
            return crowding
        copies = near_copy_groups(graph, self.crowding_group_similarity) if n > 1 else np.arange(n)
        width = max(self.k, self.density_k, self.label_k, self.crowding_k)
        for held in fold_masks(regrouped_folds(fold_of, copies, seed=self.seed), n):
            rest_vectors, held_vectors = train_vectors[~held], train_vectors[held]
            held_graph = held_out_graph(graph, held, rest_vectors, held_vectors, width=width)
            crowding[held] = self._crowding_scorer().fit_score(held_vectors, rest_vectors,
                                                               training_graph=held_graph).gap_score
        return crowding

    def _contributions(self, calibration: GapCalibration | None, density: CoverageScores, label_scores: np.ndarray,
                       signals: CoverageScores, crowding: CrowdingScores, label_aware: bool) -> dict[str, Any]:
        """Count the production rows each signal alone puts below the calibrated statistic (they overlap)."""
        if calibration is None or calibration.statistic is None:
            return {"uncovered_by_density": None, "uncovered_by_labels": None, "uncovered_by_density_and_labels": None,
                    "uncovered_by_crowding": None}
        cut = calibration.statistic
        weight = self._crowding_weight()
        return {
            "uncovered_by_density": int((density.gap_score < cut).sum()),
            "uncovered_by_labels": int((label_scores < cut).sum()) if label_aware else None,
            "uncovered_by_density_and_labels": int((signals.gap_score < cut).sum()),
            "uncovered_by_crowding": int((crowding.gap_score / weight < cut).sum()) if weight > 0 else 0,
        }
