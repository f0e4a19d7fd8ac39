"""What the coverage analysis reports, built from its per-row decisions.

:class:`~dataaudit.coverage.analysis.CoverageAnalysis` decides which production rows are gaps;
this module turns those decisions into the tables and summary numbers users read: the schemas
of ``coverage``, ``gaps`` and ``cluster_coverage``, the gap topics' keywords and collection
advice, the per-cluster traffic comparison and the evaluation gap. Kept apart so the decision
rule and its presentation change independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from dataaudit.cluster.labels import class_tfidf_keywords, keyword_label
from dataaudit.coverage.calibration import GapCalibration, conformal_p_values
from dataaudit.coverage.gaps import majority, recommended_collection, representatives

if TYPE_CHECKING:
    from dataaudit.cluster.pipeline import Clustering
    from dataaudit.coverage.scoring import CoverageScores
    from dataaudit.dataset import Dataset

#: Columns of ``coverage``; production read from several files (shards) adds ``source_file``.
COVERAGE_SCHEMA = {
    "row": pl.Int64,
    "line": pl.Int64,
    "nearest_row": pl.Int64,
    "similarity": pl.Float64,
    "density_gap_score": pl.Float64,
    "label_gap_score": pl.Float64,
    "crowding_gap_score": pl.Float64,
    "gap_score": pl.Float64,
    "is_gap": pl.Boolean,
    "gap_cluster": pl.Int64,
    "prompt": pl.String,
}
GAPS_SCHEMA = {
    "gap_cluster": pl.Int64,
    "size": pl.Int64,
    "share_of_production": pl.Float64,
    "label": pl.String,
    "keywords": pl.List(pl.String),
    "representatives": pl.List(pl.String),
    "nearest_training_cluster": pl.Int64,
    "collect": pl.Int64,
    "collect_basis": pl.String,
}
CLUSTER_COVERAGE_SCHEMA = {
    "cluster": pl.Int64,
    "label": pl.String,
    "train_rows": pl.Int64,
    "train_share": pl.Float64,
    "production_rows": pl.Int64,
    "production_share": pl.Float64,
    "density_ratio": pl.Float64,
    "status": pl.String,
}
#: Training rows used as the background that gap keywords must stand out from.
_KEYWORD_BACKGROUND_ROWS = 20_000


@dataclass
class CoverageResult:
    """The coverage analysis's answer: three tables and a summary, each empty when not computed.

    ``coverage`` has one row per production row, ``gaps`` one per gap topic, ``cluster_coverage``
    one per training cluster; ``summary`` holds the numbers and says in ``not_computed`` what was
    skipped and why, so an empty table is never mistaken for "no gaps".
    """

    coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=COVERAGE_SCHEMA))
    gaps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=GAPS_SCHEMA))
    cluster_coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CLUSTER_COVERAGE_SCHEMA))
    summary: dict[str, Any] = field(default_factory=dict)


# -- gap topics ----------------------------------------------------------------------------------
def _gaps_frame(
    training: "Dataset",
    prompts: list[str],
    vectors: np.ndarray,
    gap_cluster: np.ndarray,
    row_cluster: np.ndarray,
    clustering: "Clustering | None",
    *,
    min_collect: int,
    seed: int,
) -> pl.DataFrame:
    """Describe each gap topic: size, keywords, representative prompts and what to collect."""
    ids = [int(c) for c in np.unique(gap_cluster) if c >= 0]
    if not ids:
        return pl.DataFrame(schema=GAPS_SCHEMA)
    keywords = _gap_keywords(prompts, gap_cluster, training.prompts, seed=seed)
    training_rows = len(training)
    largest_cluster = int(clustering.clusters.get_column("size").max()) if clustering is not None and clustering.clusters.height else training_rows
    records = []
    for cluster in ids:
        members = np.flatnonzero(gap_cluster == cluster)
        collection = recommended_collection(len(members), production_rows=len(prompts), training_rows=training_rows,
                                            min_collect=min_collect, max_collect=largest_cluster)
        records.append(
            {
                "gap_cluster": cluster,
                "size": len(members),
                "share_of_production": len(members) / len(prompts),
                "label": keyword_label(keywords.get(cluster, []), cluster),
                "keywords": keywords.get(cluster, []),
                "representatives": representatives(vectors[members], [prompts[i] for i in members]),
                "nearest_training_cluster": majority(row_cluster[members]),
                "collect": collection.count,
                "collect_basis": collection.basis,
            }
        )
    return pl.DataFrame(records, schema=GAPS_SCHEMA).sort(["size", "gap_cluster"], descending=[True, False])


def _gap_keywords(prompts: list[str], gap_cluster: np.ndarray, training_prompts: list[str], *, seed: int) -> dict[int, list[str]]:
    """Find c-TF-IDF keywords of each gap cluster against training (one background class).

    With training as background, words that training already uses a lot score low, so the
    keywords say what is new about the gap rather than what it shares with covered traffic.
    """
    background = training_prompts
    if len(background) > _KEYWORD_BACKGROUND_ROWS:
        rng = np.random.default_rng(seed)
        background = [background[i] for i in np.sort(rng.choice(len(background), size=_KEYWORD_BACKGROUND_ROWS, replace=False))]
    texts = list(prompts) + list(background)
    labels = np.concatenate([gap_cluster, np.full(len(background), -1, dtype=np.int64)])
    return class_tfidf_keywords(texts, labels)


# -- known clusters ------------------------------------------------------------------------------
def _cluster_coverage(clustering: "Clustering | None", row_cluster: np.ndarray, is_gap: np.ndarray, *,
                      under_covered_ratio: float, min_cluster_rows: int) -> pl.DataFrame:
    """Count covered production rows for the cluster of their nearest training row.

    Gap rows are left out: their nearest training row is by definition not close, so they
    would credit a cluster with traffic it does not cover. Shares are of all production rows.
    """
    if clustering is None or clustering.clusters.height == 0:
        return pl.DataFrame(schema=CLUSTER_COVERAGE_SCHEMA)
    training_rows = len(clustering.nearest_cluster)
    production_rows = len(row_cluster)
    covered = row_cluster[~is_gap]
    records = []
    for cluster, label in clustering.clusters.select("cluster", "label").iter_rows():
        train_count = int((clustering.nearest_cluster == cluster).sum())
        production_count = int((covered == cluster).sum())
        train_share = train_count / training_rows
        production_share = production_count / production_rows
        ratio = production_share / train_share if train_share > 0 else None
        expected = train_share * len(covered)
        if ratio is not None and ratio >= under_covered_ratio and production_count >= min_cluster_rows:
            status = "under_covered"
        elif production_count == 0 and expected >= min_cluster_rows:
            status = "unused"
        else:
            status = "ok"
        records.append(
            {
                "cluster": int(cluster),
                "label": label,
                "train_rows": train_count,
                "train_share": train_share,
                "production_rows": production_count,
                "production_share": production_share,
                "density_ratio": ratio,
                "status": status,
            }
        )
    return pl.DataFrame(records, schema=CLUSTER_COVERAGE_SCHEMA).sort("cluster")


def _clusters_with(cluster_coverage: pl.DataFrame, status: str) -> list[int]:
    """List the training clusters of one ``status`` (``under_covered``, ``unused``) for the summary."""
    return cluster_coverage.filter(pl.col("status") == status).get_column("cluster").to_list()


# -- evaluation gap ------------------------------------------------------------------------------
def _evaluation_gap(training_rows: int, calibration: GapCalibration | None, scores: "CoverageScores",
                    individual_gap: np.ndarray) -> dict[str, Any]:
    """Flag the calibration's held-out training rows by the same rule as production, and compare."""
    if calibration is None:
        return {"skipped": f"training has {training_rows} rows: too few to hold some out and calibrate on the rest"}
    cut = -np.inf if calibration.statistic is None else calibration.statistic
    held = _split_numbers(calibration.held_out < cut, conformal_p_values(calibration.held_out, calibration.held_out))
    production = _split_numbers(individual_gap, scores.gap_score)
    result: dict[str, Any] = {"held_out": held, "production": production}
    if held["gap_share"] > 0:
        result["gap_share_ratio"] = round(production["gap_share"] / held["gap_share"], 2)
    result["explanation"] = (
        f"{production['gap_share']:.1%} of production is uncovered vs {held['gap_share']:.1%} of "
        f"{calibration.calibration_rows:,} training rows held out from the reference: an eval set carved from "
        "training measures the model only on the traffic it was trained for"
    )
    return result


def _split_numbers(is_gap: np.ndarray, gap_score: np.ndarray) -> dict[str, Any]:
    """Summarise one split (held-out training or production): rows, gap share, mean calibrated score."""
    calibrated = gap_score[~np.isnan(gap_score)]
    return {
        "rows": int(len(is_gap)),
        "gap_share": _share(int(is_gap.sum()), len(is_gap)),
        "mean_gap_score": round(float(calibrated.mean()), 4) if calibrated.size else None,
    }


# -- formatting ----------------------------------------------------------------------------------
def _share(part: int, whole: int) -> float:
    """Round ``part / whole`` to four places; 0 for an empty whole rather than a division error."""
    return round(part / whole, 4) if whole else 0.0


def _nullable(values: np.ndarray) -> list[float | None]:
    """Turn NaN (not computed) into null, so the Parquet column says "missing", not "not a number"."""
    return [None if np.isnan(v) else float(v) for v in values]
