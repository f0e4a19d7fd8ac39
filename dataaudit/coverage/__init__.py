"""Coverage of production traffic by the training set: gaps, their topics, drift, eval gap.

``CoverageAnalysis().run(ctx, production)`` is what the audit runner calls; the pieces
(:class:`CoverageScorer`, :class:`GapClusterer`, :func:`drift_auc`) are usable on their own
with plain embedding arrays.
"""

from dataaudit.coverage.analysis import CoverageAnalysis, CoverageResult
from dataaudit.coverage.drift import DriftEstimate, drift_auc, interpret_auc
from dataaudit.coverage.gaps import GapClusterer
from dataaudit.coverage.scoring import CoverageScorer, CoverageScores, percentile_of

__all__ = [
    "CoverageAnalysis",
    "CoverageResult",
    "CoverageScorer",
    "CoverageScores",
    "DriftEstimate",
    "GapClusterer",
    "drift_auc",
    "interpret_auc",
    "percentile_of",
]
