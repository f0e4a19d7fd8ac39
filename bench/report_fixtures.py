"""A synthetic AuditResult shaped like the pipeline's (built in milliseconds even for 100k rows)
and the report's embedded data, for the report's tests and ``bench.bench_report``."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.result import AuditResult
from dataaudit.summary import SCHEMA_VERSION

CHECKS = ("duplicate", "conflict", "format", "quality", "outlier")
HOSTILE = (
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><script>alert(2)</script>",
    "<!--<script>",
    "&lt;b&gt; \u2028 end",
)
#: The machine ``kind`` each synthetic check gives its findings.
KINDS = {"duplicate": "near", "conflict": "label_conflict", "format": "format_mismatch", "quality": "truncated",
         "outlier": "outlier"}
#: Rates at which the synthetic checks flag rows (roughly like a messy real dataset).
FLAG_RATES = {"duplicate": 0.03, "conflict": 0.01, "format": 0.02, "quality": 0.01, "outlier": 0.01}


def synthetic_result(
    n_rows: int = 300,
    *,
    n_clusters: int = 8,
    hostile: bool = False,
    production: bool = True,
    finetune: bool = False,
    seed: int = 0,
) -> AuditResult:
    """An AuditResult shaped like the pipeline's, built in milliseconds even for 100k rows."""
    rng = np.random.default_rng(seed)
    rows = np.arange(n_rows, dtype=np.int64)
    cluster = rng.integers(0, n_clusters, n_rows)
    cluster[rng.random(n_rows) < 0.05] = -1
    centres = rng.normal(0, 10, (n_clusters, 2))
    xy = centres[np.maximum(cluster, 0)] + rng.normal(0, 1, (n_rows, 2))
    prompts = [f"Question {i} about topic {c}: how do I reset my password on device {i % 17}?" for i, c in zip(rows, cluster)]
    responses = [f"Go to settings and choose reset ({i})." for i in rows]
    labels = [f"intent_{c % 5}" for c in cluster]
    columns = {
        "row": rows, "line": rows + 1, "prompt": prompts, "response": responses, "label": labels,
        "cluster": cluster, "nearest_cluster": np.where(cluster < 0, 0, cluster),
        "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32),
    }
    records = []
    groups = {"duplicate": np.full(n_rows, -1), "conflict": np.full(n_rows, -1)}
    for index, name in enumerate(CHECKS):
        flagged = rng.random(n_rows) < FLAG_RATES[name]
        if hostile:
            flagged[:2] = True
        scores = np.where(flagged, rng.random(n_rows) * 0.5, 1.0)
        if name in groups:
            # Pairs (i, i+1): for duplicates the first is kept, for conflicts both are flagged.
            starts = np.flatnonzero(flagged[0 : n_rows - 1 : 2]) * 2
            groups[name][starts] = starts
            groups[name][starts + 1] = starts
            if name == "duplicate":
                flagged = np.zeros(n_rows, dtype=bool)
                flagged[starts + 1] = True
            else:
                flagged[starts + 1] = True
            scores = np.where(flagged, 0.1, 1.0)
        columns[f"{name}_score"] = scores
        columns[f"is_{name}_issue"] = flagged
        severity = "error" if name == "conflict" else "warning" if index % 2 == 0 else "info"
        for row in np.flatnonzero(flagged):
            group = int(groups[name][row]) if name in groups else None
            records.append({
                "row": int(row), "check": name, "kind": KINDS[name], "score": float(scores[row]), "severity": severity,
                "cluster": int(cluster[row]), "group": group,
                "reason": f"{name} issue on row {row}", "suggestion": f"review row {row}",
                "suggested_value": labels[(row + 1) % n_rows] if name == "conflict" else None,
            })
    for name, group in groups.items():
        columns[f"{name}_group"] = pl.Series([int(g) if g >= 0 else None for g in group], dtype=pl.Int64)
    columns["format_signature"] = ["text" if r % 3 else "json" for r in rows]
    frame = pl.DataFrame(columns)
    findings = pl.DataFrame(records, schema=FINDING_SCHEMA)
    sizes = np.bincount(cluster[cluster >= 0], minlength=n_clusters)
    clusters = pl.DataFrame({
        "cluster": np.arange(n_clusters, dtype=np.int64),
        "size": sizes.astype(np.int64),
        "label": [f"password reset {c}" for c in range(n_clusters)],
        "keywords": [["password", "reset", f"device{c}"] for c in range(n_clusters)],
        "representatives": [[int(r) for r in np.flatnonzero(cluster == c)[:3]] for c in range(n_clusters)],
        "stability": rng.random(n_clusters),
        "format_consistency": rng.random(n_clusters),
        "format_majority": ["text"] * n_clusters,
    })
    summary = {
        "schema_version": SCHEMA_VERSION,
        "dataaudit_version": "0.0.test",
        "dataset": {"path": "data/train.jsonl", "format": "messages", "records": n_rows, "bad_lines": 3, "blank_lines": 0,
                    "has_labels": True, "has_responses": True},
        "clusters": {"count": n_clusters, "noise_rows": int((cluster < 0).sum()), "noise_share": float((cluster < 0).mean())},
        "checks": {name: {"status": "ok", "flagged": int(frame.get_column(f"is_{name}_issue").sum()),
                          "by_severity": {s: int(((findings["check"] == name) & (findings["severity"] == s)).sum()) for s in ("error", "warning", "info")},
                          "params": {"threshold": 0.5}} for name in CHECKS},
        "issues_by_check": {name: int((findings["check"] == name).sum()) for name in CHECKS},
        "issues_by_severity": {s: int((findings["severity"] == s).sum()) for s in ("error", "warning", "info")},
        "flagged_rows": int(findings["row"].n_unique()),
        "timings": {"load": 0.1, "embed_prompt": 12.5, "cluster": 3.2, "check_duplicate": 0.4},
        "versions": {"python": "3.11", "polars": pl.__version__},
    }
    result = AuditResult(rows=frame, findings=findings, clusters=clusters, summary=summary)
    if production:
        n_prod = max(10, n_rows // 4)
        gap = rng.random(n_prod) < 0.1
        result.coverage = pl.DataFrame({
            "row": np.arange(n_prod, dtype=np.int64), "nearest_row": rng.integers(0, n_rows, n_prod),
            "similarity": rng.random(n_prod), "gap_score": rng.random(n_prod), "is_gap": gap,
            "gap_cluster": pl.Series([0 if g and i % 2 else None for i, g in enumerate(gap)], dtype=pl.Int64),
            "prompt": [f"production prompt {i} about refunds" for i in range(n_prod)],
        })
        result.gaps = pl.DataFrame({
            "gap_cluster": [0], "size": [int(gap.sum())], "share_of_production": [float(gap.mean())],
            "label": ["refund policy"], "keywords": [["refund", "policy"]],
            "representatives": [["How do I get a refund?", "Refund for a broken device"]],
            "nearest_training_cluster": [1], "collect": [40],
        })
        result.cluster_coverage = pl.DataFrame({
            "cluster": np.arange(n_clusters, dtype=np.int64), "label": [f"password reset {c}" for c in range(n_clusters)],
            "train_share": [1 / n_clusters] * n_clusters, "production_share": [0.5] + [0.0] * (n_clusters - 1),
            "density_ratio": [4.0] + [0.0] * (n_clusters - 1),
            "status": ["under_covered", "unused"] + ["ok"] * (n_clusters - 2),
        })
        summary["coverage"] = {
            "production_rows": n_prod, "gap_rows": int(gap.sum()), "gap_share": float(gap.mean()), "gap_clusters": 1,
            "examples_to_collect": 40, "headline": f"{gap.mean():.0%} of production traffic is not covered",
            "drift": {"auc": 0.71, "interpretation": "production differs noticeably from training"},
            "evaluation_gap": {"gap_share_ratio": 2.5, "explanation": "an eval set carved from training flatters the model"},
        }
    if finetune:
        summary["finetune"] = {
            "model": "tiny-test",
            "confirmation": [
                {"finding": "conflicting labels", "prediction": "accuracy drops on conflicts", "measurement": "-12 pts", "verdict": "confirmed"},
                {"finding": "duplicates", "prediction": "no effect", "measurement": "+0.1 pts", "verdict": "not confirmed",
                 "verdict_note": "few-shot is within the margin"},
                {"finding": "format", "prediction": "mix", "measurement": "n/a", "verdict": "budget too small",
                 "verdict_note": "not confirmed in 300 rows"},
            ],
        }
    if hostile:
        _plant_hostile(result)
    return result


def _plant_hostile(result: AuditResult) -> None:
    """Put attack strings in every place dataset text or names can reach the page."""
    evil = " ".join(HOSTILE)
    result.rows = result.rows.with_columns(
        pl.when(pl.col("row") < 2).then(pl.lit(evil)).otherwise(pl.col(c)).alias(c) for c in ("prompt", "response", "label")
    )
    result.findings = result.findings.with_columns(
        pl.when(pl.col("row") < 2).then(pl.lit(evil)).otherwise(pl.col(c)).alias(c)
        for c in ("kind", "reason", "suggestion", "suggested_value")
    )
    result.clusters = result.clusters.with_columns(
        pl.lit(evil).alias("label"), pl.lit([evil, HOSTILE[1]]).alias("keywords"), pl.lit(evil).alias("format_majority")
    )
    result.gaps = result.gaps.with_columns(pl.lit(evil).alias("label"), pl.lit([evil]).alias("keywords"), pl.lit([evil]).alias("representatives"))
    result.cluster_coverage = result.cluster_coverage.with_columns(pl.lit(evil).alias("label"))
    result.coverage = result.coverage.with_columns(pl.lit(evil).alias("prompt"))
    summary = result.summary
    summary["dataset"]["path"] = f"/tmp/{evil}.jsonl"
    summary["dataset"][evil] = evil
    summary["timings"][evil] = 1.0
    summary["checks"]["duplicate"]["params"][evil] = evil
    summary["coverage"]["headline"] = evil
    summary["finetune"] = {"confirmation": [{"finding": evil, "prediction": evil, "measurement": evil, "verdict": evil}], evil: evil}


def json_block(html: str) -> str:
    start = html.index('<script type="application/json" id="audit-data">') + len('<script type="application/json" id="audit-data">')
    return html[start:html.index("</script>", start)]


def payload(html: str) -> dict:
    return json.loads(json_block(html))
