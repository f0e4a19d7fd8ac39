"""The demo data's production-only families show up as gap clusters (real MiniLM embeddings)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import SAMPLE_DATA, FixedClusterPipeline

ABSENT_FAMILIES = ("translation", "account_cancellation", "sql_queries")


@pytest.mark.slow
def test_families_missing_from_training_are_gap_clusters():
    from dataaudit.context import AuditContext
    from dataaudit.coverage import CoverageAnalysis
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import load
    from dataaudit.runner import default_embedder

    if not (SAMPLE_DATA / "production.jsonl").exists():
        pytest.skip("sample_data/ not generated")
    train, production = load(SAMPLE_DATA / "train.jsonl"), load(SAMPLE_DATA / "production.jsonl")
    records = [json.loads(line) for line in (SAMPLE_DATA / "production.jsonl").read_text(encoding="utf-8").splitlines()]
    family = [record["family"] for record in records]
    known = [f not in ABSENT_FAMILIES and not record["edge_case"] for f, record in zip(family, records)]
    # The clustering of training only feeds cluster_coverage; gaps do not depend on it.
    ctx = AuditContext(engine=LocalEngine(), dataset=train, embedder=default_embedder(), cluster_pipeline=FixedClusterPipeline())
    result = CoverageAnalysis().run(ctx, production)

    coverage = result.coverage
    is_gap = coverage.get_column("is_gap").to_list()
    gap_cluster = coverage.get_column("gap_cluster").to_list()
    members: dict[int, list[str]] = {}
    for cluster, name in zip(gap_cluster, family):
        if cluster is not None:
            members.setdefault(cluster, []).append(name)
    majority = {cluster: Counter(names).most_common(1)[0][0] for cluster, names in members.items()}
    for name in ABSENT_FAMILIES:
        rows = [i for i, f in enumerate(family) if f == name]
        assert all(is_gap[i] for i in rows), name
        in_own_clusters = [i for i in rows if gap_cluster[i] is not None and majority[gap_cluster[i]] == name]
        assert len(in_own_clusters) >= 0.8 * len(rows), name
    assert sum(g for g, k in zip(is_gap, known) if k) <= 0.1 * sum(known)  # covered families stay covered

    labels = dict(result.gaps.select("gap_cluster", "label").iter_rows())
    sql_clusters = [c for c, name in majority.items() if name == "sql_queries"]
    assert any("sql" in result.gaps.filter(result.gaps["gap_cluster"] == c)["keywords"][0].to_list() for c in sql_clusters), labels
    summary = result.summary
    assert summary["evaluation_gap"]["production"]["gap_share"] > 3 * summary["evaluation_gap"]["held_out"]["gap_share"]
    assert summary["drift"]["auc"] > 0.6
