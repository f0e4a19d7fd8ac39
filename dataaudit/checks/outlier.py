"""Outlier check: prompts far from their neighbours (for the local density) or from all the data.

For each row, ``spread`` is its mean cosine distance to its k nearest prompts. Two kinds of
row are flagged:

- **isolated** (LOF-style): judged against its own neighbourhood, ``ratio = spread /
  median(spread of its neighbours)``. A row in a sparse but coherent region has a ratio near 1;
  a row that sits alone next to a dense cluster has a large one. Flagged when ``ratio ≥
  min_ratio``, a robust z-score of ``log(ratio)`` over the dataset is ``≥ min_z`` (unusual for
  this data) and ``spread ≥ min_spread_ratio ×`` the dataset's median spread (far in absolute
  terms too; without it, an ordinary row next to a tight group of near-duplicates looks
  isolated, because its neighbours' spread is tiny);
- **far out**: ``spread ≥ min_relative_spread ×`` the dataset's median and a robust z-score of
  ``log(spread)`` ``≥ min_spread_z``. This catches a small group of off-topic rows (math problems
  in an intent set), whose nearest neighbours are each other, so their ratio is near 1 and the
  first rule cannot see them. On Banking77 with 1% foreign rows it found all of them where the
  first rule found 3%.

At most ``max_share`` of the rows are flagged, farthest first (by ``max(ratio, spread /
median spread)``). Severity is info, or warning from ``warning_ratio``. The score is one over
that farness, clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.params import Interval

#: Fewer rows than this give no meaningful notion of "typical" distance.
MIN_ROWS = 5
_MAD_TO_SIGMA = 1.4826


@register_check
class OutlierCheck(Check):
    """Flags prompts unusually far from their nearest neighbours (see the module docstring)."""

    name = "outlier"
    description = "Rows far from everything else: off-topic, wrong language or corrupted."
    kinds = {"far": Kind("warning", 0.4, "Review it: remove it if it is off-topic, malformed or mislabelled."),
             "isolated": Kind("info", 0.4, "Review it: if it is a real use case, collect more examples like it.")}
    _parameter_constraints = {
        "neighbors": [Interval(int, 1, None)],
        "min_ratio": [Interval(float, 0, None)],
        "min_z": [Interval(float, None, None)],
        "min_spread_ratio": [Interval(float, 0, None)],
        "min_relative_spread": [Interval(float, 0, None)],
        "min_spread_z": [Interval(float, None, None)],
        "max_share": [Interval(float, 0, 1)],
        "warning_ratio": [Interval(float, 0, None)],
    }
    needs = frozenset({"knn_prompt"})

    def __init__(self, *, neighbors: int = 10, min_ratio: float = 2.0, min_z: float = 3.5, min_spread_ratio: float = 1.5,
                 min_relative_spread: float = 2.5, min_spread_z: float = 2.0, max_share: float = 0.01,
                 warning_ratio: float = 2.5):
        self.neighbors = neighbors
        self.min_ratio = min_ratio
        self.min_z = min_z
        self.min_spread_ratio = min_spread_ratio
        self.min_relative_spread = min_relative_spread
        self.min_spread_z = min_spread_z
        self.max_share = max_share
        self.warning_ratio = warning_ratio

    def run(self, ctx: AuditContext) -> CheckResult:
        """Flag isolated and far-out prompts from the prompt kNN graph, at most ``max_share`` of the rows."""
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

        relative_spread = spread / max(typical, 1e-12)
        far = spread >= self.min_spread_ratio * typical
        isolated = (ratio >= self.min_ratio) & (_robust_z(np.log(ratio)) >= self.min_z) & far
        far_out = (relative_spread >= self.min_relative_spread) & (_robust_z(np.log(spread + floor)) >= self.min_spread_z)
        farness = np.maximum(ratio, relative_spread)
        candidates = np.flatnonzero(isolated | far_out)
        budget = max(1, int(np.ceil(self.max_share * n)))
        chosen = candidates[np.argsort(-farness[candidates], kind="stable")][:budget]

        row_ids = ctx.dataset.frame.get_column("row").to_list()
        findings = []
        for index in sorted(chosen.tolist()):
            if not (far_out[index] and relative_spread[index] >= ratio[index]):
                reason = (f"an isolated prompt: mean distance to its {k} nearest prompts is {spread[index]:.2f}, "
                          f"{ratio[index]:.1f}× that of its neighbours ({neighbour_spread[index]:.2f}); "
                          f"dataset median {typical:.2f}")
            else:
                reason = (f"far from the rest of the data: mean distance to its {k} nearest prompts is {spread[index]:.2f}, "
                          f"{relative_spread[index]:.1f}× the dataset median ({typical:.2f})")
                if neighbour_spread[index] >= self.min_relative_spread * typical:
                    reason += f"; its nearest prompts are as far out ({neighbour_spread[index]:.2f}): a small group unlike the rest"
            findings.append(
                Finding(
                    row=row_ids[index],
                    score=float(np.clip(1.0 / farness[index], 0.0, 1.0)),
                    severity="warning" if farness[index] >= self.warning_ratio else "info",
                    kind="isolated" if not (far_out[index] and relative_spread[index] >= ratio[index]) else "far",
                    reason=reason,
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
            "isolated_candidates": int(isolated.sum()),
            "far_out_candidates": int(far_out.sum()),
            "budget": budget,
        }
        rows = result_from_findings(self.name, ctx, findings, summary=summary,
                                    ratio=pl.Series(np.round(ratio, 4), dtype=pl.Float64))
        return _with_scores(rows, np.clip(1.0 / farness, 0.0, 1.0))


def _robust_z(values: np.ndarray) -> np.ndarray:
    """(value - median) / (1.4826 × MAD): a z-score that a few extreme rows cannot inflate."""
    centre = float(np.median(values))
    mad = float(np.median(np.abs(values - centre))) * _MAD_TO_SIGMA
    return (values - centre) / max(mad, 1e-6)


def _with_scores(result: CheckResult, scores: np.ndarray) -> CheckResult:
    """Every row gets its graded score, flagged or not, so rows can be ranked by outlierness."""
    result.rows = result.rows.with_columns(pl.Series("outlier_score", scores, dtype=pl.Float64))
    return result
