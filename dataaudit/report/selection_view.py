"""The report's selection section, as plain data for ``selection.html.j2``.

It reads a saved selection (:class:`dataaudit.selection.saved.SavedSelection`, duck-typed: the
report sits below the selection package) field by field: what was kept per cluster against the
pool and production's share, and, when ``finetune --selection`` ran, the selected − random
(− full) comparisons with their intervals and verdicts. Nothing here is computed from prose.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from dataaudit.jsonsafe import finite_or_none

#: Clusters listed in the report (largest pool first); the rest are counted.
MAX_SELECTION_CLUSTERS = 50
#: Badge class per selection verdict (``dataaudit.selection.verify``'s BETTER and WORSE), looked up
#: by value; ``no evidence`` and unknown values get none.
SELECTION_BADGES = {"better": "ok", "worse": "bad"}


def selection_view(saved: Any, clusters: pl.DataFrame, *, max_clusters: int = MAX_SELECTION_CLUSTERS
                   ) -> dict[str, Any] | None:
    """The section's data, or None when the audit directory holds no selection and no verification.
    ``clusters`` is the audit's cluster frame (for the labels)."""
    if saved is None:
        return None
    labels = {}
    if {"cluster", "label"} <= set(clusters.columns):
        labels = {int(c): str(label) for c, label in clusters.select("cluster", "label").iter_rows()
                  if c is not None and label is not None}
    summary = saved.summary
    view: dict[str, Any] = {"summary": summary, "clusters": [], "hidden_clusters": 0, "verification": None,
                            "same_selection": saved.same_selection}
    if summary is not None:
        ordered = saved.clusters.sort(["pool", "cluster"], descending=[True, False], nulls_last=True)
        view["clusters"] = [_cluster_row(row, labels, bool(summary.get("quotas_bind", True)))
                            for row in ordered.head(max_clusters).iter_rows(named=True)]
        view["hidden_clusters"] = max(0, ordered.height - max_clusters)
        view["production"] = bool(summary.get("production"))
    if saved.comparisons is not None:
        view["verification"] = {
            "summary": saved.verification_summary,
            "runs": saved.runs.to_dicts() if saved.runs is not None else [],
            "run_columns": saved.runs.columns if saved.runs is not None else [],
            "comparisons": [_comparison_row(row) for row in saved.comparisons.iter_rows(named=True)],
        }
    return view


def _cluster_row(row: dict[str, Any], labels: dict[int, str], quotas_bind: bool) -> dict[str, Any]:
    production = finite_or_none(row.get("production_share"))
    selected = finite_or_none(row.get("selected_share"))
    cluster = row.get("cluster")
    return {
        "cluster": cluster,
        "label": labels.get(int(cluster)) if cluster is not None else None,
        "pool": row.get("pool"),
        "pool_share": finite_or_none(row.get("pool_share")),
        "production_share": production,
        "quota": row.get("quota") if quotas_bind else None,
        "selected": row.get("selected"),
        "selected_share": selected,
        # Percentage points the selection gives the cluster beyond (or short of) production's share.
        "versus_production": None if production is None or selected is None else selected - production,
    }


def _comparison_row(row: dict[str, Any]) -> dict[str, Any]:
    verdict = row.get("verdict")
    return {**row, "badge": SELECTION_BADGES.get(str(verdict), "") if verdict is not None else "",
            "rows_factor_needed": finite_or_none(row.get("rows_factor_needed"))}

