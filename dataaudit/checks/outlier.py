"""Outlier check: prompts far from all their neighbours, relative to how dense the data
around them is.

For each row, ``spread`` is its mean cosine distance to its k nearest prompts. A row is
judged against its own neighbourhood, LOF-style: ``ratio = spread / median(spread of its
neighbours)``. A row in a sparse but coherent region has a ratio near 1; a row that sits
alone next to a dense cluster has a large one. Flagged rows satisfy all of

- ``ratio ≥ min_ratio`` (clearly farther out than its neighbours),
- a robust z-score of ``log(ratio)`` over the dataset ``≥ min_z`` (unusual for this data),
- ``spread ≥ min_spread_ratio ×`` the dataset's median spread: far in absolute terms too.
  Without it, an ordinary row next to a tight group of near-duplicates looks isolated,
  because its neighbours' spread is tiny;

and at most ``max_share`` of the rows are flagged, most extreme first. Severity is info,
or warning from ``warning_ratio``. The score is ``1 / ratio`` clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, register_check, result_from_findings
from dataaudit.context import AuditContext

#: Fewer rows than this give no meaningful notion of "typical" distance.
MIN_ROWS = 5
_MAD_TO_SIGMA = 1.4826


@register_check
class OutlierCheck(Check):
    """Flags prompts unusually far from their nearest neighbours (see the module docstring)."""

    name = "outlier"
    needs = frozenset({"knn_prompt"})

    def __init__(self, *, neighbors: int = 10, min_ratio: float = 2.0, min_z: float = 3.5, min_spread_ratio: float = 1.5,
                 max_share: float = 0.01, warning_ratio: float = 2.5):
        self.neighbors = neighbors
        self.min_ratio = min_ratio
        self.min_z = min_z
        self.min_spread_ratio = min_spread_ratio
        self.max_share = max_share
        self.warning_ratio = warning_ratio

    def run(self, ctx: AuditContext) -> CheckResult:
        n = len(ctx.dataset)
        if n < MIN_ROWS:
            return result_from_findings(self.name, ctx, [], summary={"skipped": f"fewer than {MIN_ROWS} rows"},
                                        ratio=pl.Series([None] * n, dtype=pl.Float64))
        graph = ctx.knn("prompt")
        k = min(self.neighbors, graph.indices.shape[1])
        if k < 2:
            return result_from_findings(self.name, ctx, [], summary={"skipped": "fewer than 2 neighbours per row"},
                                        ratio=pl.Series([None] * n, dtype=pl.Float64))
        indices = graph.indices[:, :k]
        distances = np.clip(1.0 - graph.similarities[:, :k].astype(np.float64), 0.0, 2.0)
        spread = distances.mean(axis=1)
        typical = float(np.median(spread))
        floor = max(0.05 * typical, 1e-3)  # keeps ratios finite among exact duplicates
        neighbour_spread = np.median(spread[indices], axis=1)
        ratio = (spread + floor) / (neighbour_spread + floor)

        log_ratio = np.log(ratio)
        centre = float(np.median(log_ratio))
        mad = float(np.median(np.abs(log_ratio - centre))) * _MAD_TO_SIGMA
        z = (log_ratio - centre) / max(mad, 1e-6)
        far = spread >= self.min_spread_ratio * typical
        candidates = np.flatnonzero((ratio >= self.min_ratio) & (z >= self.min_z) & far)
        budget = max(1, int(np.ceil(self.max_share * n)))
        chosen = candidates[np.argsort(-ratio[candidates], kind="stable")][:budget]

        row_ids = ctx.dataset.frame.get_column("row").to_list()
        findings = []
        for index in sorted(chosen.tolist()):
            findings.append(
                Finding(
                    row=row_ids[index],
                    score=float(np.clip(1.0 / ratio[index], 0.0, 1.0)),
                    severity="warning" if ratio[index] >= self.warning_ratio else "info",
                    reason=(
                        f"an isolated prompt: mean distance to its {k} nearest prompts is {spread[index]:.2f}, "
                        f"{ratio[index]:.1f}× that of its neighbours ({neighbour_spread[index]:.2f}); "
                        f"dataset median {typical:.2f}"
                    ),
                    suggestion=(
                        "Review it: remove it if it is off-topic, malformed or mislabelled; if it is a real use "
                        "case, collect more examples like it."
                    ),
                )
            )
        summary = {
            "neighbors": k,
            "median_spread": round(typical, 4),
            "candidates": int(candidates.size),
            "budget": budget,
        }
        rows = result_from_findings(self.name, ctx, findings, summary=summary,
                                    ratio=pl.Series(np.round(ratio, 4), dtype=pl.Float64))
        return _with_scores(rows, np.clip(1.0 / ratio, 0.0, 1.0))


def _with_scores(result: CheckResult, scores: np.ndarray) -> CheckResult:
    """Every row gets its graded score, flagged or not, so rows can be ranked by outlierness."""
    result.rows = result.rows.with_columns(pl.Series("outlier_score", scores, dtype=pl.Float64))
    return result
