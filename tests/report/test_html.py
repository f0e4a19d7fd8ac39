"""The HTML report: sections, escaping of hostile dataset text, empty results, large results."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.report.html import MAX_FINDINGS_PER_CHECK, _json_for_script, render_html, write_report
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


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


# -- sections --------------------------------------------------------------------------------
@pytest.mark.parametrize(("basis", "note"), [("ceiling", "capped at the size of the largest training cluster"),
                                             ("floor", "the fewest worth collecting"), ("proportional", None)])
def test_a_gap_says_when_its_collection_count_was_bounded(basis, note):
    result = synthetic_result(200)
    result.gaps = result.gaps.with_columns(pl.lit(basis).alias("collect_basis"))
    html = render_html(result)
    assert "collect about <b>40</b>" in html
    for text in ("capped at the size of the largest training cluster", "the fewest worth collecting"):
        assert (text in html) == (text == note)


def test_report_has_every_section():
    result = synthetic_result(400, finetune=True)
    html = render_html(result)
    for anchor in ["overview", "map", "clusters", "coverage", "finetune"] + [f"check-{i}" for i in range(len(CHECKS))]:
        assert f'id="{anchor}"' in html
    assert "map-canvas" in html and "clusters-table" in html
    assert "refund policy" in html  # gap topic, server-rendered
    assert "collect about <b>40</b>" in html
    assert "under covered" in html and "unused" in html
    assert '<span class="badge ok">confirmed</span>' in html
    assert '<span class="badge bad">not confirmed</span> — few-shot is within the margin' in html
    # The badge comes from the verdict's value: a note that says "not confirmed" does not make it red.
    assert '<span class="badge ">budget too small</span> — not confirmed in 300 rows' in html
    assert "<th>verdict_note</th>" not in html
    assert "data/train.jsonl" in html and "messages" in html
    data = payload(html)
    assert data["checks"] == list(CHECKS)
    assert {c["id"] for c in data["clusters"]} == set(range(8)) | {-1}
    assert data["map"]["shown"] == 400  # under max_map_points: every row drawn


def test_no_network_references():
    html = render_html(synthetic_result(100))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html.replace("&#x27;", "'")


def test_check_tables_hold_worst_findings_and_groups():
    result = synthetic_result(2000)
    data = payload(render_html(result))
    conflict = data["findings"][CHECKS.index("conflict")]
    assert conflict["total"] == result.findings.filter(pl.col("check") == "conflict").height
    assert conflict["sev"] == sorted(conflict["sev"])
    groups = data["groups"][CHECKS.index("duplicate")]
    assert groups and all(len(group["rows"]) == 2 for group in groups)
    kept, duplicate = groups[0]["rows"]
    assert groups[0]["reasons"][0] is None and groups[0]["reasons"][1]  # kept row beside its flagged copy
    assert str(kept) in data["texts"] and str(duplicate) in data["texts"]
    assert data["groups"][CHECKS.index("format")] == []


def test_worst_findings_are_capped():
    result = synthetic_result(30_000, n_clusters=20)
    data = payload(render_html(result))
    fmt = data["findings"][CHECKS.index("format")]
    assert fmt["total"] > MAX_FINDINGS_PER_CHECK
    assert len(fmt["row"]) == MAX_FINDINGS_PER_CHECK


def test_finetune_section_only_when_present():
    assert 'id="finetune"' not in render_html(synthetic_result(50))
    assert 'id="finetune"' in render_html(synthetic_result(50, finetune=True))


# -- escaping --------------------------------------------------------------------------------
ALLOWED_TAGS = {"html", "head", "meta", "link", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "main",
                "nav", "a", "section", "p", "div", "table", "thead", "tbody", "tr", "th", "td", "span", "b", "ul", "li",
                "details", "summary", "label", "input", "button", "canvas", "noscript", "code", "script"}


def test_hostile_strings_render_as_text():
    result = synthetic_result(200, hostile=True)
    html = render_html(result)
    parsed = parse(html)
    tags = [tag for tag, _ in parsed.tags]
    assert set(tags) <= ALLOWED_TAGS
    assert tags.count("script") == 2 and "img" not in tags
    assert not [name for _, attrs in parsed.tags for name, _ in attrs if name.startswith("on")]
    assert "<script>alert" not in html and "<img" not in html and "<!--" not in html
    text = "".join(parsed.text)
    assert HOSTILE[1] in text  # server-rendered places show it as text (cluster coverage, gaps, finetune)
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in html


def test_json_block_cannot_be_broken_out_of():
    html = render_html(synthetic_result(200, hostile=True))
    block = json_block(html)
    assert "<" not in block and ">" not in block and "&" not in block
    data = json.loads(block)
    evil = " ".join(HOSTILE)
    assert data["texts"]["0"][1] == evil  # the prompt round-trips exactly
    assert evil in data["map"]["p"][0]
    assert data["clusters"][0]["label"] == evil


def test_json_for_script_cleans_nan_and_odd_types():
    text = _json_for_script({"a": [1.0, float("nan"), float("inf")], "b": np.int64(3), "c": {"</script>": object}})
    assert json.loads(text)["a"] == [1.0, None, None]
    assert json.loads(text)["b"] == 3 and "</script>" in json.loads(text)["c"] and "<" not in text


def test_hostile_check_name_is_escaped():
    result = synthetic_result(50, production=False)
    evil = HOSTILE[1]
    result.summary["checks"][evil] = {"status": "failed", "error": HOSTILE[0]}
    html = render_html(result)
    parsed = parse(html)
    assert "img" not in {tag for tag, _ in parsed.tags}
    assert payload(html)["checks"][-1] == evil


# No lone surrogates (category Cs): the loader rejects them as bad lines, and polars cannot hold them.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("<>/&\"'=! scriptSCRIPT-\u2028\\")) | st.characters(exclude_categories=("Cs",)),
               max_size=40))
def test_any_text_round_trips_through_the_json_block(text):
    result = synthetic_result(20, production=False)
    result.rows = result.rows.with_columns(pl.lit(text).alias("prompt"), pl.lit(text).alias("label"))
    result.clusters = result.clusters.with_columns(pl.lit(text).alias("label"))
    html = render_html(result)
    tags = [tag for tag, _ in parse(html).tags]
    assert tags.count("script") == 2 and set(tags) <= ALLOWED_TAGS
    data = payload(html)
    assert data["texts"]["0"][1] == (text if len(text) <= 320 else text[:320] + "…")
    assert data["clusters"][0]["label"] == (text or "cluster 0")  # an empty label falls back to the id


# -- degenerate inputs ---------------------------------------------------------------------------
def test_empty_result_renders():
    result = AuditResult(rows=pl.DataFrame(), findings=pl.DataFrame(), clusters=pl.DataFrame(), summary={})
    html = render_html(result)
    assert 'id="overview"' in html and "No production sample" in html
    data = payload(html)
    assert data["map"]["shown"] == 0 and data["clusters"] == [] and data["checks"] == []


def test_no_findings_no_coverage_no_coordinates():
    result = synthetic_result(60, production=False)
    result.rows = result.rows.drop("x", "y", *[c for c in result.rows.columns if c.startswith("is_")])
    result.findings = result.findings.head(0)
    result.clusters = result.clusters.select("cluster", "size")
    html = render_html(result)
    data = payload(html)
    assert data["map"]["shown"] == 0
    assert all(f["row"] == [] for f in data["findings"])
    assert "No production sample" in html
    assert [c["label"] for c in data["clusters"]][:2] == ["cluster 0", "cluster 1"]


def test_missing_summary_sections_and_odd_values():
    result = synthetic_result(40)
    result.summary = {"dataset": "not a dict", "timings": {"load": float("nan")}, "checks": None,
                      "coverage": {"drift": {"auc": None}}}
    result.findings = result.findings.with_columns(pl.lit(float("nan")).alias("score"))
    html = render_html(result)
    data = payload(html)  # NaN never reaches the JSON (JSON.parse would reject it)
    assert all(score is None for f in data["findings"] for score in f["score"])


def test_saved_and_loaded_result_renders(tmp_path):
    result = synthetic_result(150, finetune=True)
    loaded = AuditResult.load(result.save(tmp_path / "audit"))
    assert render_html(loaded) == render_html(result)


def test_write_report_writes_atomically(tmp_path):
    target = tmp_path / "out" / "report.html"
    written = write_report(synthetic_result(30), target)
    assert written == target and target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


# -- large results ---------------------------------------------------------------------------------
def test_map_downsampling_keeps_every_flagged_row_and_is_deterministic():
    result = synthetic_result(12_000, n_clusters=30)
    html = render_html(result, max_map_points=3000)
    points = payload(html)["map"]
    flagged = set(result.findings.get_column("row").to_list())
    flagged |= set(result.rows.filter(pl.any_horizontal(pl.col(f"is_{c}_issue") for c in CHECKS)).get_column("row").to_list())
    assert flagged <= set(points["row"])
    assert points["shown"] == len(points["row"]) <= max(3000, len(flagged))
    assert points["shown"] >= 0.95 * 3000
    assert set(points["c"]) >= set(range(30))  # every cluster keeps some points
    assert html == render_html(result, max_map_points=3000)


def test_fifty_thousand_rows_render_small():
    result = synthetic_result(50_000, n_clusters=60)
    html = render_html(result)
    size = len(html.encode("utf-8"))
    assert payload(html)["map"]["shown"] <= 20_000 + result.findings.get_column("row").n_unique()
    assert size < 8_000_000, f"{size:,} bytes"
