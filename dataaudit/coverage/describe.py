"""What the coverage summary says about its gap decision: the rule, the rate and what each signal flagged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataaudit.coverage.analysis import CoverageAnalysis
    from dataaudit.coverage.calibration import GapCalibration
    from dataaudit.coverage.labels import LabelCoverageScorer
    from dataaudit.coverage.scoring import CoverageScorer


def contribution_sentence(analysis: "CoverageAnalysis", summary: dict[str, Any]) -> str:
    """What each signal flagged, beside the rate asked for (empty for a fixed threshold)."""
    if summary.get("uncovered_by_density_and_labels") is None:
        return ""
    return (f". Asked: {analysis.alpha:.1%} of rows drawn like training; flagged here {summary['gap_share']:.1%}: "
            f"{summary['uncovered_by_density_and_labels']:,} rows by density and labels, "
            + (f"{summary['uncovered_by_crowding']:,} by crowding (they may overlap), " if analysis.crowding_alpha > 0 else "")
            + f"{summary['rows_added_by_gap_clusters']:,} added by growing gap topics")


def threshold_summary(analysis: "CoverageAnalysis", scorer: "CoverageScorer", label_scorer: "LabelCoverageScorer | None",
                      calibration: "GapCalibration | None") -> dict[str, Any]:
    """The rule as data: the rate, the statistic it implied, how it was calibrated, in words too."""
    if analysis.threshold is not None:
        return {
            "method": "fixed similarity",
            "similarity": analysis.threshold,
            "description": f"a production row is a gap when its cosine similarity to the nearest training row is below {analysis.threshold}",
        }
    labels = (
        f", combined (weighted Fisher's method, label weight {analysis.label_weight}, calibrated on training) "
        f"with how little the labels of its "
        f"{label_scorer.k_} nearest training rows agree ({len(label_scorer.classes_)} classes, leave-one-out)"
        f"{'' if analysis.label_view == 'neighbours' else ' and its Mahalanobis distance to the nearest class centroid (out of fold)'}"
        f"{' [centroids only]' if analysis.label_view == 'centroids' else ''}"
        if label_scorer is not None else ""
    )
    cut = None if calibration is None else calibration.statistic
    crowding = (
        f"; or crowding: among its {analysis.crowding_k} (or more, when production is large) nearest rows in training and "
        f"production, so many are production that a binomial with production's typical share gives p < "
        f"{(cut if cut is not None else analysis.alpha) * analysis.crowding_alpha / analysis.alpha:.2g}"
        if analysis.crowding_alpha > 0 else ""
    )
    calibrated = calibration.as_dict() if calibration is not None else {"alpha": analysis.alpha, "statistic": None}
    how = (f"{calibration.calibration_rows:,} training rows held out from the reference ({calibration.method}, "
           f"{calibration.folds} fold{'s' if calibration.folds > 1 else ''})" if calibration is not None
           else "no held-out training rows (too few)")
    return {
        "method": "calibrated on held-out training",
        **calibrated,
        "k": scorer.k_,
        "density_k": scorer.density_k_,
        "label_aware": label_scorer is not None,
        "label_classes": len(label_scorer.classes_) if label_scorer is not None else None,
        "description": (
            f"a production row is a gap when at most {analysis.alpha:.0%} of {how} are as poorly covered as it is "
            f"(flagging {analysis.alpha:.0%} of rows drawn like training); covered = the lesser of its signals: "
            f"density (mean similarity to the {scorer.k_} nearest training rows minus the same for the "
            f"{scorer.density_k_} training rows around it)" + labels
            + (f" below {cut:.4g}" if cut is not None else "") + crowding
        ),
    }
