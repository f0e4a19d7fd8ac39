"""The self-contained HTML report: one file, no network, quick to open on 100k rows.

Python renders what must work without JavaScript (overview, check summaries, coverage,
fine-tune confirmation) and embeds the rest once, as JSON, for a small vanilla-JS viewer (the
2-D map, the cluster table with drill-down, each check's worst rows and groups). The map is
downsampled deterministically but keeps every flagged row; tables hold the worst rows only and
paginate in the browser.

Dataset text never reaches the page as markup: on the server it goes through
:func:`html.escape`, in the browser only through ``textContent``; the JSON block escapes
``<``, ``>`` and ``&`` so no string can close its tag; and a Content-Security-Policy pinned to
the hash of the report's own script keeps any other script (or ``onerror=`` handler) from
running even if something slipped through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from html import escape
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from dataaudit.io.atomic import write_text_atomic
from dataaudit.result import AuditResult

#: Characters of a prompt shown when hovering the map.
HOVER_CHARS = 140
#: Characters of a prompt / response / label shown in tables (the full text is in the saved audit).
TEXT_CHARS = 320
LABEL_CHARS = 80
#: The worst findings of each check embedded in the report; the rest are in findings.jsonl.
MAX_FINDINGS_PER_CHECK = 500
MAX_GROUPS_PER_CHECK = 100
MAX_GROUP_MEMBERS = 8
#: Example rows per cluster for the drill-down: representatives, then flagged rows, then a sample.
MAX_CLUSTER_EXAMPLES = 25
#: Unflagged rows every cluster keeps on a downsampled map, so small clusters stay visible.
MIN_MAP_POINTS_PER_CLUSTER = 5
#: Map coordinates are sent as integers on a grid of this many steps across the wider axis.
MAP_GRID = 10_000
MAX_UNCOVERED_PROMPTS = 20
MAX_GAP_EXAMPLES = 5
GAP_EXAMPLE_CHARS = 220
SEVERITY_NAMES = ("error", "warning", "info")
_NO_SEVERITY = len(SEVERITY_NAMES)
_SAMPLE_SEED = 0

CHECK_DESCRIPTIONS = {
    "duplicate": "Rows that repeat another row exactly or nearly: they over-weight one example and leak between splits.",
    "conflict": "Equivalent prompts with contradicting labels or answers: the model is taught both.",
    "format": "Responses whose format differs from the majority of their cluster.",
    "quality": "Rows that look broken: empty, truncated, placeholder or garbled text.",
    "outlier": "Rows far from everything else: off-topic, wrong language or corrupted.",
}
KNOWN_CONFIRMATION_COLUMNS = ("finding", "prediction", "measurement", "verdict")


def render_html(result: AuditResult, *, max_map_points: int = 20000, rows_per_page: int = 50) -> str:
    """The report as one HTML string that needs nothing but a browser to open."""
    checks = _check_names(result)
    table = _row_table(result, checks)
    findings = [_findings_payload(result.findings, name) for name in checks]
    groups = [_groups_payload(result, name) for name in checks]
    clusters = _clusters_payload(result, table, checks)
    referenced = _referenced_rows(findings, groups, clusters)
    payload = {
        "rows_per_page": max(1, int(rows_per_page)),
        "checks": checks,
        "severities": list(SEVERITY_NAMES) + ["none"],
        "map": _map_payload(result.rows, table, max_map_points),
        "clusters": clusters,
        "findings": findings,
        "groups": groups,
        "texts": _texts(result.rows, table, referenced),
    }
    summary = result.summary if isinstance(result.summary, Mapping) else {}
    dataset = _mapping(summary.get("dataset"))
    title = f"dataaudit report — {dataset.get('path') or 'dataset'}"
    body = "".join(
        [
            _nav_html(checks, summary, result),
            _overview_html(summary, result, checks),
            _map_html(),
            _clusters_html(),
            _checks_html(summary, checks, findings),
            _coverage_html(summary, result),
            _finetune_html(summary),
        ]
    )
    return _document(title, body, _json_for_script(payload))


def write_report(result: AuditResult, path: str | os.PathLike, *, max_map_points: int = 20000, rows_per_page: int = 50) -> Path:
    """Render and write the report atomically (a killed run leaves the old file or the new one)."""
    target = Path(path)
    write_text_atomic(target, render_html(result, max_map_points=max_map_points, rows_per_page=rows_per_page))
    return target


# -- data for the viewer ---------------------------------------------------------------------
def _check_names(result: AuditResult) -> list[str]:
    """Checks in pipeline order: the summary's, then any others the frames mention."""
    names: list[str] = [str(name) for name in _mapping(result.summary.get("checks") if isinstance(result.summary, Mapping) else None)]
    if "check" in result.findings.columns and result.findings.height:
        names += [str(name) for name in result.findings.get_column("check").drop_nulls().unique(maintain_order=True).to_list()]
    names += [column[3:-6] for column in result.rows.columns if column.startswith("is_") and column.endswith("_issue")]
    return list(dict.fromkeys(names))


def _row_table(result: AuditResult, checks: Sequence[str]) -> pl.DataFrame:
    """Per row: cluster, coordinates, one flag per check, the worst severity and the check behind it."""
    rows = result.rows
    if "row" not in rows.columns:
        schema = {"row": pl.Int64, "cluster": pl.Int64, "x": pl.Float64, "y": pl.Float64, "mask": pl.Int64,
                  "severity": pl.Int64, "worst_check": pl.Int64, "worst_score": pl.Float64, "key": pl.Float64}
        return pl.DataFrame(schema={**schema, **{f"f{i}": pl.Boolean for i in range(len(checks))}})
    findings = _own_findings(result.findings)
    columns: list[pl.Expr] = [pl.col("row").cast(pl.Int64)]
    columns.append(_int_column(rows, "cluster", -1))
    for axis in ("x", "y"):
        columns.append(pl.col(axis).cast(pl.Float64).fill_nan(None).alias(axis) if axis in rows.columns else pl.lit(None, pl.Float64).alias(axis))
    for index, name in enumerate(checks):
        flag = pl.lit(False)
        issue = f"is_{name}_issue"
        if issue in rows.columns:
            flag = flag | pl.col(issue).cast(pl.Boolean).fill_null(False)
        flagged_rows = findings.filter(pl.col("check") == name).get_column("row").drop_nulls().unique()
        if flagged_rows.len():
            flag = flag | pl.col("row").cast(pl.Int64).is_in(flagged_rows.implode())
        columns.append(flag.alias(f"f{index}"))
    table = rows.select(columns)
    flag_names = [f"f{i}" for i in range(len(checks))]
    mask = pl.sum_horizontal([pl.col(f).cast(pl.Int64) * (1 << i) for i, f in enumerate(flag_names)]) if flag_names else pl.lit(0, pl.Int64)
    table = table.with_columns(mask.cast(pl.Int64).alias("mask"))

    position = {name: index for index, name in enumerate(checks)}
    worst = (
        findings.with_columns(
            pl.col("severity").replace_strict({s: i for i, s in enumerate(SEVERITY_NAMES)}, default=len(SEVERITY_NAMES) - 1, return_dtype=pl.Int64).alias("severity"),
            pl.col("check").replace_strict(position, default=None, return_dtype=pl.Int64).alias("worst_check"),
        )
        .drop_nulls("worst_check")
        .sort(["row", "severity", "score"], nulls_last=True)
        .unique(subset="row", keep="first")
        .select("row", "severity", "worst_check", pl.col("score").alias("worst_score"))
    )
    table = table.join(worst, on="row", how="left")
    first_flag = [pl.when(pl.col(f)).then(pl.lit(i, pl.Int64)) for i, f in enumerate(flag_names)]
    table = table.with_columns(
        pl.coalesce([pl.col("worst_check"), *first_flag, pl.lit(-1, pl.Int64)]).alias("worst_check"),
        pl.when(pl.col("severity").is_not_null()).then(pl.col("severity"))
        .when(pl.col("mask") > 0).then(pl.lit(len(SEVERITY_NAMES) - 1, pl.Int64))
        .otherwise(pl.lit(_NO_SEVERITY, pl.Int64)).alias("severity"),
        pl.col("worst_score").fill_nan(None),
    )
    # One seeded random number per row: the order in which unflagged rows are sampled.
    key = np.random.default_rng(_SAMPLE_SEED).random(table.height)
    return table.with_columns(pl.Series("key", key, dtype=pl.Float64))


def _own_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """The findings frame with every column the report reads, whatever was missing."""
    defaults = {"row": pl.Int64, "check": pl.String, "score": pl.Float64, "severity": pl.String,
                "cluster": pl.Int64, "group": pl.Int64, "reason": pl.String, "suggestion": pl.String}
    if "row" not in findings.columns or "check" not in findings.columns:
        return pl.DataFrame(schema=defaults)
    columns = []
    for name, dtype in defaults.items():
        if name in findings.columns:
            column = pl.col(name).cast(dtype, strict=False)
            columns.append(column.fill_nan(None) if dtype == pl.Float64 else column)
        else:
            columns.append(pl.lit(None, dtype).alias(name))
    return findings.select(columns)


def _sample_unflagged(rest: pl.DataFrame, budget: int) -> pl.DataFrame:
    """A seeded sample of ``budget`` rows, proportional per cluster but a few from every cluster."""
    if budget <= 0:
        return rest.head(0)
    if rest.height <= budget:
        return rest
    rate = budget / rest.height
    ranked = rest.with_columns(
        pl.col("key").rank("ordinal").over("cluster").cast(pl.Int64).alias("_rank"),
        pl.len().over("cluster").cast(pl.Int64).alias("_size"),
    )
    quota = pl.max_horizontal((pl.col("_size") * rate).floor(), pl.min_horizontal(pl.col("_size"), pl.lit(MIN_MAP_POINTS_PER_CLUSTER)))
    kept = ranked.filter(pl.col("_rank") <= quota)
    if kept.height > budget:
        kept = kept.sort(["_rank", "key"]).head(budget)
    return kept.drop("_rank", "_size")


def _map_payload(rows: pl.DataFrame, table: pl.DataFrame, max_points: int) -> dict[str, Any]:
    placed = table.filter(pl.col("x").is_not_null() & pl.col("y").is_not_null() & pl.col("x").is_finite() & pl.col("y").is_finite())
    empty = {"total": table.height, "placed": placed.height, "shown": 0, "flagged": 0, "w": 1, "h": 1,
             "row": [], "x": [], "y": [], "c": [], "k": [], "s": [], "m": [], "p": []}
    if placed.height == 0:
        return empty
    flagged = placed.filter(pl.col("mask") > 0)
    sample = _sample_unflagged(placed.filter(pl.col("mask") == 0), max(0, int(max_points) - flagged.height))
    chosen = pl.concat([flagged, sample], how="vertical").sort("row")
    x_min, x_max = float(placed.get_column("x").min()), float(placed.get_column("x").max())
    y_min, y_max = float(placed.get_column("y").min()), float(placed.get_column("y").max())
    span = max(x_max - x_min, y_max - y_min) or 1.0
    scale = MAP_GRID / span
    if "prompt" in rows.columns and "row" in rows.columns:
        prompts = rows.select(pl.col("row").cast(pl.Int64), _truncated(rows, "prompt", HOVER_CHARS).alias("p"))
        chosen = chosen.join(prompts, on="row", how="left")
    else:
        chosen = chosen.with_columns(pl.lit(None, pl.String).alias("p"))
    points = chosen.select(
        "row",
        ((pl.col("x") - x_min) * scale).round(0).cast(pl.Int64).alias("x"),
        # Screen y grows downwards; the map keeps the embedding's "up".
        ((y_max - pl.col("y")) * scale).round(0).cast(pl.Int64).alias("y"),
        pl.col("cluster").alias("c"),
        pl.col("worst_check").alias("k"),
        pl.col("severity").alias("s"),
        pl.col("mask").alias("m"),
        "p",
    )
    payload = {name: points.get_column(name).to_list() for name in points.columns}
    payload.update(
        total=table.height,
        placed=placed.height,
        shown=points.height,
        flagged=flagged.height,
        w=max(1, round((x_max - x_min) * scale)),
        h=max(1, round((y_max - y_min) * scale)),
    )
    return payload


def _clusters_payload(result: AuditResult, table: pl.DataFrame, checks: Sequence[str]) -> list[dict[str, Any]]:
    """One record per cluster (and one for unclustered rows) with issue counts and example rows."""
    frame = result.clusters if "cluster" in result.clusters.columns else pl.DataFrame({"cluster": pl.Series([], dtype=pl.Int64)})
    counts = table.group_by("cluster").agg(
        pl.len().alias("_rows"), *[pl.col(f"f{i}").sum().alias(f"f{i}") for i in range(len(checks))]
    )
    count_of = {record["cluster"]: record for record in counts.iter_rows(named=True)}
    representatives = _representatives(frame)
    examples = _cluster_examples(table, representatives)

    records = []
    seen = set()
    for cluster in frame.iter_rows(named=True):
        cluster_id = _as_int(cluster.get("cluster"))
        if cluster_id is None or cluster_id in seen:
            continue
        seen.add(cluster_id)
        records.append(_cluster_record(cluster_id, cluster, count_of.get(cluster_id), checks, examples, representatives))
    for cluster_id in sorted(set(count_of) - seen, key=lambda c: (c < 0, c)):
        label = "unclustered" if cluster_id < 0 else f"cluster {cluster_id}"
        records.append(_cluster_record(cluster_id, {"label": label}, count_of[cluster_id], checks, examples, representatives))
    return records


def _cluster_record(
    cluster_id: int,
    cluster: Mapping[str, Any],
    counts: Mapping[str, Any] | None,
    checks: Sequence[str],
    examples: Mapping[int, list[int]],
    representatives: Mapping[int, list[int]],
) -> dict[str, Any]:
    size = _as_int(cluster.get("size"))
    keywords = cluster.get("keywords")
    return {
        "id": cluster_id,
        "label": _text(cluster.get("label")) or ("unclustered" if cluster_id < 0 else f"cluster {cluster_id}"),
        "size": size if size is not None else (counts or {}).get("_rows", 0),
        "stability": _number(cluster.get("stability")),
        "format_consistency": _number(cluster.get("format_consistency")),
        "format_majority": _text(cluster.get("format_majority")),
        "keywords": [_text(k) for k in keywords if k is not None] if isinstance(keywords, (list, tuple)) else [],
        "issues": [int((counts or {}).get(f"f{i}") or 0) for i in range(len(checks))],
        "examples": examples.get(cluster_id, []),
        "representatives": [row for row in representatives.get(cluster_id, [])],
    }


def _representatives(frame: pl.DataFrame) -> dict[int, list[int]]:
    if "representatives" not in frame.columns or not isinstance(frame.schema["representatives"], pl.List):
        return {}
    found: dict[int, list[int]] = {}
    for cluster, members in frame.select("cluster", "representatives").iter_rows():
        ids = [_as_int(member) for member in (members or [])]
        if _as_int(cluster) is not None:
            found[_as_int(cluster)] = [member for member in ids if member is not None]
    return found


def _cluster_examples(table: pl.DataFrame, representatives: Mapping[int, list[int]]) -> dict[int, list[int]]:
    if table.height == 0:
        return {}
    rep_rows = pl.DataFrame(
        {"row": [row for rows in representatives.values() for row in rows]}, schema={"row": pl.Int64}
    ).unique().with_columns(pl.lit(True).alias("_rep"))
    ordered = (
        table.select("row", "cluster", "mask", "severity", "worst_score", "key")
        .join(rep_rows, on="row", how="left")
        .with_columns(
            pl.when(pl.col("_rep").fill_null(False)).then(0).when(pl.col("mask") > 0).then(1).otherwise(2).alias("_priority")
        )
        .sort(["cluster", "_priority", "severity", "worst_score", "key"], nulls_last=True)
        .group_by("cluster", maintain_order=True)
        .head(MAX_CLUSTER_EXAMPLES)
    )
    examples: dict[int, list[int]] = {}
    for cluster, row in ordered.select("cluster", "row").iter_rows():
        examples.setdefault(cluster, []).append(row)
    return examples


def _findings_payload(findings: pl.DataFrame, check: str) -> dict[str, Any]:
    """The worst findings of one check, columnar (small JSON)."""
    own = _own_findings(findings).filter(pl.col("check") == check)
    ranked = own.with_columns(
        pl.col("severity").replace_strict({s: i for i, s in enumerate(SEVERITY_NAMES)}, default=len(SEVERITY_NAMES) - 1, return_dtype=pl.Int64)
    ).sort(["severity", "score", "row"], nulls_last=True).head(MAX_FINDINGS_PER_CHECK)
    return {
        "total": own.height,
        "row": ranked.get_column("row").to_list(),
        "score": ranked.get_column("score").round(4).to_list(),
        "sev": ranked.get_column("severity").to_list(),
        "group": ranked.get_column("group").to_list(),
        "reason": ranked.get_column("reason").to_list(),
        "suggestion": ranked.get_column("suggestion").to_list(),
    }


def _groups_payload(result: AuditResult, check: str) -> list[dict[str, Any]]:
    """Groups of one check (duplicates, conflicts), worst first, each with its members' rows."""
    rows = result.rows
    own = _own_findings(result.findings).filter(pl.col("check") == check)
    column = f"{check}_group"
    if column in rows.columns and "row" in rows.columns and rows.schema[column].is_integer():
        membership = rows.select(pl.col("row").cast(pl.Int64), pl.col(column).cast(pl.Int64).alias("group"))
    else:
        membership = own.select("row", "group")
    membership = membership.drop_nulls().filter(pl.col("group") >= 0).unique()
    if membership.height == 0:
        return []
    scored = own.select(
        "row",
        "score",
        "reason",
        pl.col("severity").replace_strict({s: i for i, s in enumerate(SEVERITY_NAMES)}, default=len(SEVERITY_NAMES) - 1, return_dtype=pl.Int64),
    ).sort(["severity", "score"], nulls_last=True).unique(subset="row", keep="first")
    members = membership.join(scored, on="row", how="left").sort(["group", "row"])
    stats = (
        members.group_by("group")
        .agg(
            pl.len().alias("size"),
            pl.col("severity").min().alias("severity"),
            pl.col("score").min().alias("worst"),
            pl.col("row").head(MAX_GROUP_MEMBERS).alias("rows"),
            pl.col("reason").head(MAX_GROUP_MEMBERS).alias("reasons"),
        )
        .filter(pl.col("severity").is_not_null())
        .sort(["severity", "worst", "size", "group"], descending=[False, False, True, False], nulls_last=True)
        .head(MAX_GROUPS_PER_CHECK)
    )
    return [
        {"group": record["group"], "size": record["size"], "rows": record["rows"], "reasons": record["reasons"]}
        for record in stats.iter_rows(named=True)
    ]


def _referenced_rows(findings: Sequence[Mapping], groups: Sequence[Sequence[Mapping]], clusters: Sequence[Mapping]) -> list[int]:
    wanted: set[int] = set()
    for payload in findings:
        wanted.update(row for row in payload["row"] if row is not None)
    for check_groups in groups:
        for group in check_groups:
            wanted.update(group["rows"])
    for cluster in clusters:
        wanted.update(cluster["examples"])
        wanted.update(cluster["representatives"])
    return sorted(wanted)


def _texts(rows: pl.DataFrame, table: pl.DataFrame, wanted: Sequence[int]) -> dict[str, list[Any]]:
    """``row -> [line, prompt, response, label, flag mask]`` for every row a table shows."""
    if "row" not in rows.columns or not wanted:
        return {}
    chosen = rows.with_columns(pl.col("row").cast(pl.Int64)).filter(pl.col("row").is_in(pl.Series(wanted, dtype=pl.Int64).implode()))
    picked = chosen.select(
        "row",
        _int_column(chosen, "line", None).alias("line"),
        _truncated(chosen, "prompt", TEXT_CHARS).alias("prompt"),
        _truncated(chosen, "response", TEXT_CHARS).alias("response"),
        _truncated(chosen, "label", LABEL_CHARS).alias("label"),
    ).join(table.select("row", "mask"), on="row", how="left")
    return {str(row): [line, prompt, response, label, mask or 0] for row, line, prompt, response, label, mask in picked.iter_rows()}


def _truncated(frame: pl.DataFrame, column: str, limit: int) -> pl.Expr:
    if column not in frame.columns:
        return pl.lit(None, pl.String)
    dtype = frame.schema[column]
    if dtype == pl.String:
        text = pl.col(column)
    elif dtype.is_numeric() or dtype == pl.Boolean:
        text = pl.col(column).cast(pl.String)
    else:
        text = pl.col(column).map_elements(lambda value: None if value is None else str(value), return_dtype=pl.String)
    return pl.when(text.str.len_chars() > limit).then(text.str.slice(0, limit) + "…").otherwise(text)


def _int_column(frame: pl.DataFrame, column: str, default: int | None) -> pl.Expr:
    if column in frame.columns and frame.schema[column].is_numeric():
        expr = pl.col(column).cast(pl.Int64, strict=False)
        return (expr.fill_null(default) if default is not None else expr).alias(column)
    return pl.lit(default, pl.Int64).alias(column)


def _json_for_script(payload: Any) -> str:
    """JSON that cannot end its ``<script>`` element: every ``<``, ``>`` and ``&`` is a ``\\u`` escape."""
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # a NaN or an odd type somewhere: clean the whole payload once
        text = json.dumps(_json_safe(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(v is None or type(v) in (int, str, bool) for v in value):
            return list(value)
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# -- server-rendered sections -----------------------------------------------------------------
def _nav_html(checks: Sequence[str], summary: Mapping, result: AuditResult) -> str:
    links = [("overview", "Overview"), ("map", "Map"), ("clusters", "Clusters")]
    links += [(f"check-{i}", name) for i, name in enumerate(checks)]
    links.append(("coverage", "Coverage"))
    if _confirmation(summary) or _mapping(summary.get("finetune")):
        links.append(("finetune", "Fine-tune"))
    items = "".join(f'<a href="#{escape(anchor)}">{escape(str(label))}</a>' for anchor, label in links)
    return f'<nav class="top">{items}</nav>'


def _overview_html(summary: Mapping, result: AuditResult, checks: Sequence[str]) -> str:
    dataset = _mapping(summary.get("dataset"))
    clusters = _mapping(summary.get("clusters"))
    by_severity = _mapping(summary.get("issues_by_severity"))
    records = dataset.get("records", result.rows.height)
    tiles = [
        ("records", _fmt(records)),
        ("format", _fmt(dataset.get("format"))),
        ("bad lines", _fmt(dataset.get("bad_lines", 0))),
        ("clusters", _fmt(clusters.get("count", result.clusters.height))),
        ("unclustered", _fmt(clusters.get("noise_share"), percent=True)),
        ("rows flagged", _fmt(summary.get("flagged_rows", "—"))),
    ]
    tiles += [(severity, _fmt(by_severity[severity])) for severity in SEVERITY_NAMES if severity in by_severity]
    parts = [
        '<section id="overview"><h2>Dataset overview</h2>',
        f'<p class="path">{escape(_text(dataset.get("path")) or "")}</p>',
        _tiles_html(tiles),
        '<div class="cols"><div>',
        "<h3>Checks</h3>",
        _checks_table_html(summary, checks),
        "<h3>Dataset</h3>",
        _kv_html(dataset),
    ]
    production = _mapping(summary.get("production"))
    if production:
        parts += ["<h3>Production sample</h3>", _kv_html(production)]
    parts += ["</div><div>", "<h3>Timings</h3>", _timings_html(_mapping(summary.get("timings")))]
    other = {key: summary[key] for key in ("embedder", "dataaudit_version") if key in summary}
    if other:
        parts += ["<h3>Run</h3>", _kv_html(other)]
    if _mapping(summary.get("parameters")):
        parts += ["<details><summary>Parameters</summary>", _kv_html(_mapping(summary.get("parameters"))), "</details>"]
    if _mapping(summary.get("versions")):
        parts += ["<details><summary>Versions</summary>", _kv_html(_mapping(summary.get("versions"))), "</details>"]
    parts.append("</div></div></section>")
    return "".join(parts)


def _checks_table_html(summary: Mapping, checks: Sequence[str]) -> str:
    if not checks:
        return '<p class="muted">No checks ran.</p>'
    infos = _mapping(summary.get("checks"))
    issues = _mapping(summary.get("issues_by_check"))
    head = "<tr><th>check</th><th>status</th><th class=num>flagged rows</th><th class=num>findings</th>" + "".join(
        f"<th class=num>{s}</th>" for s in SEVERITY_NAMES
    ) + "</tr>"
    body = []
    for index, name in enumerate(checks):
        info = _mapping(infos.get(name))
        by_severity = _mapping(info.get("by_severity"))
        body.append(
            f'<tr><td><a href="#check-{index}">{escape(name)}</a></td><td>{_status_html(info)}</td>'
            f"<td class=num>{_fmt(info.get('flagged'))}</td><td class=num>{_fmt(issues.get(name))}</td>"
            + "".join(f"<td class=num>{_fmt(by_severity.get(s))}</td>" for s in SEVERITY_NAMES)
            + "</tr>"
        )
    return f'<table class="grid"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _status_html(info: Mapping) -> str:
    status = _text(info.get("status")) or "unknown"
    if info.get("skipped"):
        return f'<span class="badge warn">skipped</span> <span class="muted">{escape(_text(info.get("skipped")))}</span>'
    if status == "ok":
        return '<span class="badge ok">ok</span>'
    if status == "failed":
        return f'<span class="badge bad">failed</span> <span class="muted">{escape(_text(info.get("error")) or "")}</span>'
    return f'<span class="badge">{escape(status)}</span>'


def _timings_html(timings: Mapping) -> str:
    numbers = {str(k): v for k, v in timings.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    if not numbers:
        return '<p class="muted">No timings recorded.</p>'
    longest = max(numbers.values()) or 1.0
    rows = "".join(
        f'<tr><th>{escape(name)}</th><td class=num>{seconds:,.2f} s</td>'
        f'<td class="barcell"><span class="bar" style="width:{max(0.0, 100.0 * seconds / longest):.1f}%"></span></td></tr>'
        for name, seconds in numbers.items()
    )
    return f'<table class="kv timings">{rows}</table>'


def _map_html() -> str:
    return (
        '<section id="map"><h2>Map</h2>'
        '<p class="muted">Every row embedded and projected to 2-D: nearby points are similar prompts. '
        "Hover a point to read its prompt, click it to open its cluster; scroll to zoom, drag to pan.</p>"
        '<div class="needs-js"><div class="map-controls">'
        '<label><input type="radio" name="map-colour" value="cluster" checked> colour by cluster</label>'
        '<label><input type="radio" name="map-colour" value="issue"> colour by issue</label>'
        '<button type="button" id="map-reset">reset view</button>'
        '<span id="map-count" class="muted"></span></div>'
        '<div class="map-wrap" id="map-wrap"><canvas id="map-canvas"></canvas><div id="map-tip" class="tip" hidden></div></div>'
        '<div id="map-legend" class="legend"></div><p id="map-selection" class="muted"></p></div>'
        '<noscript><p class="muted">The map needs JavaScript.</p></noscript></section>'
    )


def _clusters_html() -> str:
    return (
        '<section id="clusters"><h2>Clusters</h2>'
        '<p class="muted">Topics found by clustering the prompts. Click a row to see its examples '
        "(representatives first, then flagged rows). Click a column title to sort.</p>"
        '<div id="clusters-table" class="needs-js"></div><div id="cluster-detail"></div>'
        '<noscript><p class="muted">The cluster table needs JavaScript.</p></noscript></section>'
    )


def _checks_html(summary: Mapping, checks: Sequence[str], findings: Sequence[Mapping]) -> str:
    infos = _mapping(summary.get("checks"))
    parts = []
    for index, name in enumerate(checks):
        info = _mapping(infos.get(name))
        shown, total = len(findings[index]["row"]), findings[index]["total"]
        details = {k: v for k, v in info.items() if k not in ("status", "params", "error", "skipped", "by_severity", "flagged")}
        parts.append(f'<section id="check-{index}" class="check"><h2>Check: {escape(name)} {_status_html(info)}</h2>')
        if name in CHECK_DESCRIPTIONS:
            parts.append(f'<p class="muted">{escape(CHECK_DESCRIPTIONS[name])}</p>')
        by_severity = _mapping(info.get("by_severity"))
        tiles = [("flagged rows", _fmt(info.get("flagged", total))), ("findings", _fmt(total))]
        tiles += [(s, _fmt(by_severity[s])) for s in SEVERITY_NAMES if s in by_severity]
        parts.append(_tiles_html(tiles))
        if details:
            parts.append(_kv_html(details))
        if _mapping(info.get("params")):
            parts.append(f'<details><summary>Parameters</summary>{_kv_html(_mapping(info.get("params")))}</details>')
        if total > shown:
            parts.append(f'<p class="muted">Showing the {shown:,} worst of {total:,} findings; all of them are in findings.jsonl.</p>')
        parts.append(f'<div class="js-check needs-js" data-check="{index}"></div>')
        parts.append('<noscript><p class="muted">The rows need JavaScript.</p></noscript></section>')
    return "".join(parts)


def _coverage_html(summary: Mapping, result: AuditResult) -> str:
    coverage = _mapping(summary.get("coverage"))
    parts = ['<section id="coverage"><h2>Coverage of production traffic</h2>']
    if not coverage and result.coverage.height == 0 and result.gaps.height == 0:
        parts.append('<p class="muted">No production sample was given: audit with <code>--production</code> '
                     "to see which real traffic the training set does not cover.</p></section>")
        return "".join(parts)
    if coverage.get("headline"):
        parts.append(f'<p class="headline">{escape(_text(coverage.get("headline")))}</p>')
    drift = _mapping(coverage.get("drift"))
    evaluation = _mapping(coverage.get("evaluation_gap"))
    tiles = [
        ("production rows", _fmt(coverage.get("production_rows", result.coverage.height or None))),
        ("uncovered rows", _fmt(coverage.get("gap_rows"))),
        ("uncovered share", _fmt(coverage.get("gap_share"), percent=True)),
        ("gap topics", _fmt(coverage.get("gap_clusters", result.gaps.height))),
        ("examples to collect", _fmt(coverage.get("examples_to_collect"))),
        ("drift AUC", _fmt(drift.get("auc"))),
    ]
    if "gap_share_ratio" in evaluation:
        tiles.append(("eval-set optimism", f"{_fmt(evaluation.get('gap_share_ratio'))}×"))
    parts.append(_tiles_html([tile for tile in tiles if tile[1] != "—"]))
    for sentence in (drift.get("interpretation"), evaluation.get("explanation"), _mapping(coverage.get("threshold")).get("description")):
        if sentence:
            parts.append(f'<p class="note">{escape(_text(sentence))}</p>')
    not_computed = _mapping(coverage.get("not_computed"))
    if not_computed:
        parts.append("<p class=muted>Not computed: " + "; ".join(f"{escape(str(k))}: {escape(_text(v))}" for k, v in not_computed.items()) + "</p>")
    parts.append(_gaps_html(result))
    parts.append(_cluster_coverage_html(result))
    parts.append(_uncovered_prompts_html(result))
    if coverage:
        parts.append(f"<details><summary>All coverage numbers</summary>{_kv_html(coverage)}</details>")
    parts.append("</section>")
    return "".join(parts)


def _gaps_html(result: AuditResult) -> str:
    gaps = result.gaps
    parts = ["<h3>Gap topics</h3>"]
    if gaps.height == 0 or "gap_cluster" not in gaps.columns:
        parts.append('<p class="muted">No group of uncovered production prompts forms a topic.</p>')
        return "".join(parts)
    labels = _cluster_labels(result)
    parts.append('<div class="gaps">')
    for gap in gaps.iter_rows(named=True):
        keywords = gap.get("keywords") if isinstance(gap.get("keywords"), list) else []
        representatives = gap.get("representatives") if isinstance(gap.get("representatives"), list) else []
        nearest = _as_int(gap.get("nearest_training_cluster"))
        collect = _as_int(gap.get("collect"))
        parts.append('<div class="card">')
        title = _text(gap.get("label")) or f"gap {_text(gap.get('gap_cluster'))}"
        parts.append(f"<h4>{escape(title)}</h4>")
        facts = [f"{_fmt(gap.get('size'))} production prompts"]
        if gap.get("share_of_production") is not None:
            facts.append(f"{_fmt(gap.get('share_of_production'), percent=True)} of production")
        if nearest is not None and nearest >= 0:
            facts.append(f"nearest training cluster: {labels.get(nearest, f'cluster {nearest}')}")
        parts.append(f'<p class="muted">{escape(" · ".join(facts))}</p>')
        if keywords:
            parts.append('<p class="chips">' + "".join(f"<span class=chip>{escape(_text(k))}</span>" for k in keywords if k is not None) + "</p>")
        if collect is not None:
            parts.append(f'<p class="recommend">Recommendation: collect about <b>{collect:,}</b> training examples like these.</p>')
        if representatives:
            shown = [r for r in representatives if r is not None][:MAX_GAP_EXAMPLES]
            parts.append("<ul class=examples>" + "".join(f"<li>{escape(_short(r, GAP_EXAMPLE_CHARS))}</li>" for r in shown) + "</ul>")
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _cluster_coverage_html(result: AuditResult) -> str:
    frame = result.cluster_coverage
    if frame.height == 0 or "status" not in frame.columns:
        return ""
    flagged = frame.filter(pl.col("status").cast(pl.String) != "ok")
    parts = ["<h3>Training clusters out of proportion with production</h3>"]
    if flagged.height == 0:
        parts.append('<p class="muted">Every training cluster receives production traffic roughly in proportion to its size.</p>')
        return "".join(parts)
    order = {"under_covered": 0, "unused": 1}
    records = sorted(flagged.iter_rows(named=True), key=lambda r: (order.get(_text(r.get("status")), 2), -(_number(r.get("density_ratio")) or 0.0)))
    explain = {"under_covered": "more production traffic than training data", "unused": "training data that production never asks about"}
    head = "<tr><th>cluster</th><th>label</th><th>status</th><th class=num>training share</th><th class=num>production share</th><th class=num>ratio</th></tr>"
    rows = []
    for record in records:
        status = _text(record.get("status"))
        badge = "bad" if status == "under_covered" else "warn"
        rows.append(
            f"<tr><td class=num>{_fmt(record.get('cluster'))}</td><td>{escape(_text(record.get('label')) or '')}</td>"
            f'<td><span class="badge {badge}">{escape(status.replace("_", " "))}</span> <span class=muted>{escape(explain.get(status, ""))}</span></td>'
            f"<td class=num>{_fmt(record.get('train_share'), percent=True)}</td><td class=num>{_fmt(record.get('production_share'), percent=True)}</td>"
            f"<td class=num>{_fmt(record.get('density_ratio'))}</td></tr>"
        )
    parts.append(f'<table class="grid"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')
    return "".join(parts)


def _uncovered_prompts_html(result: AuditResult) -> str:
    frame = result.coverage
    if frame.height == 0 or not {"is_gap", "prompt"} <= set(frame.columns):
        return ""
    isolated = frame.filter(pl.col("is_gap").fill_null(False))
    if "gap_cluster" in isolated.columns:
        isolated = isolated.filter(pl.col("gap_cluster").is_null())
    if isolated.height == 0:
        return ""
    order = [c for c in ("gap_score", "similarity") if c in isolated.columns]
    if order:
        isolated = isolated.sort(order, nulls_last=True)
    items = "".join(
        f"<li>{escape(_short(prompt, TEXT_CHARS))}</li>" for prompt in isolated.head(MAX_UNCOVERED_PROMPTS).get_column("prompt").to_list() if prompt is not None
    )
    return f"<h3>Least covered production prompts outside any gap topic</h3><ul class=examples>{items}</ul>"


def _finetune_html(summary: Mapping) -> str:
    finetune = _mapping(summary.get("finetune"))
    confirmation = _confirmation(summary)
    if not finetune:
        return ""
    parts = ['<section id="finetune"><h2>Fine-tune confirmation</h2>']
    if confirmation:
        keys = list(dict.fromkeys([*[k for k in KNOWN_CONFIRMATION_COLUMNS if any(k in r for r in confirmation)], *[k for r in confirmation for k in r]]))
        head = "".join(f"<th>{escape(str(k))}</th>" for k in keys)
        rows = []
        for record in confirmation:
            cells = []
            for key in keys:
                value = record.get(key)
                if key == "verdict":
                    cells.append(f'<td><span class="badge {_verdict_badge(value)}">{escape(_text(value) or "")}</span></td>')
                else:
                    cells.append(f"<td>{_value_html(value)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    rest = {k: v for k, v in finetune.items() if k != "confirmation"}
    if rest:
        parts.append(_kv_html(rest))
    parts.append("</section>")
    return "".join(parts)


def _verdict_badge(verdict: Any) -> str:
    words = re.findall(r"[a-z]+", _text(verdict).lower())
    if any(w in ("not", "no", "false", "fail", "failed", "refuted", "contradicted", "rejected") for w in words):
        return "bad"
    if any(w in ("confirmed", "confirms", "holds", "pass", "passed", "yes", "true", "supported") for w in words):
        return "ok"
    return ""


def _confirmation(summary: Mapping) -> list[Mapping]:
    confirmation = _mapping(summary.get("finetune")).get("confirmation")
    if not isinstance(confirmation, list):
        return []
    return [record for record in confirmation if isinstance(record, Mapping)]


# -- small HTML helpers ---------------------------------------------------------------------------
def _tiles_html(tiles: Iterable[tuple[str, str]]) -> str:
    items = "".join(f'<div class="tile"><div class="v">{escape(value)}</div><div class="k">{escape(key)}</div></div>' for key, value in tiles)
    return f'<div class="tiles">{items}</div>'


def _kv_html(mapping: Mapping, depth: int = 0) -> str:
    if not mapping:
        return '<p class="muted">—</p>'
    rows = "".join(f"<tr><th>{escape(str(key))}</th><td>{_value_html(value, depth, str(key))}</td></tr>" for key, value in mapping.items())
    return f'<table class="kv">{rows}</table>'


def _value_html(value: Any, depth: int = 0, key: str = "") -> str:
    if isinstance(value, Mapping):
        return _kv_html(value, depth + 1) if depth < 3 else escape(json.dumps(_json_safe(value), ensure_ascii=False))
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, Mapping) for item in value) and depth < 3:
            keys = list(dict.fromkeys(k for item in value for k in item))
            head = "".join(f"<th>{escape(str(k))}</th>" for k in keys)
            body = "".join("<tr>" + "".join(f"<td>{_value_html(item.get(k), depth + 1, str(k))}</td>" for k in keys) + "</tr>" for item in value)
            return f'<table class="grid small"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        return escape(", ".join(_fmt(item) for item in value)) if value else "—"
    return escape(_fmt(value, percent="share" in key))


def _fmt(value: Any, *, percent: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        if percent and 0.0 <= float(value) <= 1.0:
            return f"{float(value):.1%}"
        return f"{float(value):,.4g}"
    return _text(value) or "—"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _short(value: Any, limit: int) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 4) if math.isfinite(number) else None


def _cluster_labels(result: AuditResult) -> dict[int, str]:
    frame = result.clusters
    if not {"cluster", "label"} <= set(frame.columns):
        return {}
    return {int(c): _text(label) for c, label in frame.select("cluster", "label").iter_rows() if c is not None}


def _document(title: str, body: str, data_json: str) -> str:
    policy = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body class="no-js"><header><h1>{escape(title)}</h1></header><main>'
        '<noscript><p class="note">JavaScript is off: the overview, check summaries and coverage are shown; '
        "the map and row tables need it.</p></noscript>"
        f"{body}</main>"
        f'<script type="application/json" id="audit-data">{data_json}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


_STYLE = """
:root{--fg:#1d2330;--muted:#5f6b7a;--line:#dde2e8;--bg:#f6f7f9;--card:#fff;--accent:#2f5fd0;
--err:#c92a2a;--warn:#e67700;--info:#1971c2;--ok:#2b8a3e}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:18px;font-weight:600;overflow-wrap:anywhere}
nav.top{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:6px 24px;display:flex;flex-wrap:wrap;gap:4px 14px}
nav.top a{color:var(--accent);text-decoration:none;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:8px 24px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 8px}h3{font-size:14px;margin:16px 0 6px}h4{margin:0 0 4px;font-size:14px}
.muted{color:var(--muted)}.path{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--muted);overflow-wrap:anywhere;margin:0 0 8px}
.note{background:#f1f5ff;border-left:3px solid var(--accent);padding:6px 10px;margin:6px 0}
.headline{font-size:15px;font-weight:600}
.tiles{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.tile{border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:96px;background:#fbfcfd}
.tile .v{font-size:18px;font-weight:600}.tile .k{font-size:12px;color:var(--muted)}
.cols{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:24px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%}
table.grid th,table.grid td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
table.grid th{background:#f3f5f8;font-weight:600;font-size:12px;white-space:nowrap}
table.grid.small{font-size:12px}
table.kv{width:auto}table.kv th{text-align:left;font-weight:500;color:var(--muted);padding:2px 12px 2px 0;vertical-align:top}
table.kv td{padding:2px 0;overflow-wrap:anywhere}
table.timings td.barcell{width:160px;padding-left:8px}
.bar{display:inline-block;height:8px;background:#9bb3ea;border-radius:2px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
th.sortable{cursor:pointer}th.sortable:hover{color:var(--accent)}
tr.clickable{cursor:pointer}tr.clickable:hover td{background:#f1f5ff}tr.selected td{background:#e3ebff}
.txt{white-space:pre-wrap;overflow-wrap:anywhere;max-height:9em;overflow:auto;min-width:12em}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;background:#e9ecef;color:#343a40;vertical-align:middle}
.badge.ok{background:#d3f9d8;color:var(--ok)}.badge.bad{background:#ffe3e3;color:var(--err)}.badge.warn{background:#fff3bf;color:#a05a00}
.sev{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;font-weight:600}
.sev-error{background:#ffe3e3;color:var(--err)}.sev-warning{background:#fff3bf;color:#a05a00}.sev-info{background:#e7f5ff;color:var(--info)}.sev-none{background:#eee}
.chips{margin:4px 0}.chip{display:inline-block;background:#eef2f7;border-radius:10px;padding:0 8px;margin:0 4px 4px 0;font-size:12px}
.pager{display:flex;gap:8px;align-items:center;margin:6px 0;font-size:12px;color:var(--muted)}
button{font:inherit;font-size:12px;padding:2px 10px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
button:disabled{opacity:.4;cursor:default}
.map-controls{display:flex;gap:16px;align-items:center;flex-wrap:wrap;margin-bottom:6px}
.map-wrap{position:relative;border:1px solid var(--line);border-radius:6px;background:#fff;overflow:hidden}
#map-canvas{display:block;width:100%;height:520px;cursor:crosshair;touch-action:none}
.tip{position:absolute;pointer-events:none;max-width:380px;background:rgba(29,35,48,.95);color:#fff;padding:6px 9px;border-radius:5px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;z-index:3}
.tip .h{font-weight:600;margin-bottom:2px}.tip .f{color:#ffd8a8;margin-top:3px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:middle}
.gaps{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:#fbfcfd}
.recommend{margin:4px 0;color:var(--ok)}
ul.examples{margin:4px 0;padding-left:18px}ul.examples li{overflow-wrap:anywhere;white-space:pre-wrap;margin-bottom:3px}
.group{border:1px solid var(--line);border-radius:6px;margin:10px 0;padding:8px 10px}
.members{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:8px;margin-top:6px}
.member{border:1px solid var(--line);border-radius:5px;padding:6px 8px;background:#fbfcfd}
.member .lab{font-weight:600;overflow-wrap:anywhere}.member .field{font-size:11px;color:var(--muted);margin-top:4px}
.detail{border-top:2px solid var(--accent);margin-top:12px;padding-top:8px}
code{background:#eef2f7;padding:0 4px;border-radius:3px}
.no-js .needs-js{display:none}
"""

_SCRIPT = r"""
(function () {
"use strict";
var DATA = JSON.parse(document.getElementById("audit-data").textContent);
document.body.classList.remove("no-js");
var PER_PAGE = Math.max(1, DATA.rows_per_page || 50);
var CHECKS = DATA.checks || [];
var SEV = ["error", "warning", "info", "none"];
var TEXTS = DATA.texts || {};
var CHECK_COLOURS = ["#e8590c", "#c92a2a", "#7048e8", "#2b8a3e", "#1971c2", "#d6336c", "#0c8599", "#5c940d", "#862e9c", "#495057"];
var CLUSTERS = DATA.clusters || [];
var CLUSTER_BY_ID = {};
CLUSTERS.forEach(function (c) { CLUSTER_BY_ID[c.id] = c; });

// Build elements; every string becomes a text node, never markup.
function h(tag, props, children) {
  var el = document.createElement(tag);
  if (props) {
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null) return;
      if (k === "text") el.textContent = String(v);
      else if (k === "cls") el.className = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, String(v));
    });
  }
  add(el, children);
  return el;
}
function add(parent, child) {
  if (child === undefined || child === null) return;
  if (Array.isArray(child)) { child.forEach(function (c) { add(parent, c); }); return; }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}
function fmtInt(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
function fmtNum(x, d) { return x === null || x === undefined || !isFinite(x) ? "—" : Number(x).toFixed(d === undefined ? 2 : d); }
function fmtPct(x) { return x === null || x === undefined || !isFinite(x) ? "—" : (100 * x).toFixed(0) + "%"; }
function sevName(rank) { return SEV[rank] || "none"; }
function sevBadge(rank) { var n = sevName(rank); return h("span", {cls: "sev sev-" + n, text: n}); }
function clusterName(id) {
  if (id === null || id === undefined) return "—";
  var c = CLUSTER_BY_ID[id];
  if (id < 0) return "unclustered";
  return c ? "#" + id + " " + c.label : "#" + id;
}
function textOf(row, field) { var t = TEXTS[row]; return t ? t[field] : null; }
function textCell(s) {
  if (s === null || s === undefined) return h("div", {cls: "txt"}, h("span", {cls: "muted", text: "—"}));
  if (String(s).trim() === "") return h("div", {cls: "txt"}, h("span", {cls: "muted", text: s === "" ? "(empty)" : "(whitespace only)"}));
  return h("div", {cls: "txt", text: String(s)});
}
function hasText(rows, field) { return rows.some(function (row) { var t = textOf(row, field); return t !== null && t !== undefined; }); }
function flagNames(mask) {
  var names = [];
  CHECKS.forEach(function (name, i) { if (mask & (1 << i)) names.push(name); });
  return names;
}
function compare(a, b) {
  var an = a === null || a === undefined, bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : (an ? 1 : -1);
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

// A client-side paginated, sortable table.
function dataTable(columns, items, opts) {
  opts = opts || {};
  var perPage = opts.perPage || PER_PAGE;
  var wrap = h("div", {cls: "tbl"});
  var tbody = h("tbody");
  var nav = h("div", {cls: "pager"});
  var order = items.slice(), page = 0, sortCol = -1, asc = true, selectedTr = null;
  var headRow = h("tr");
  columns.forEach(function (col, i) {
    var th = h("th", {cls: (col.num ? "num" : "") + (col.sort ? " sortable" : ""), text: col.title, title: col.sort ? "sort" : null});
    if (col.sort) th.addEventListener("click", function () {
      asc = sortCol === i ? !asc : !col.num;
      sortCol = i;
      order = items.slice().sort(function (a, b) {
        var an = col.sort(a), bn = col.sort(b);
        var nullA = an === null || an === undefined, nullB = bn === null || bn === undefined;
        if (nullA || nullB) return compare(an, bn);
        return asc ? compare(an, bn) : compare(bn, an);
      });
      page = 0; draw();
    });
    headRow.appendChild(th);
  });
  var table = h("table", {cls: "grid"}, [h("thead", null, headRow), tbody]);
  function draw() {
    tbody.textContent = "";
    var pages = Math.max(1, Math.ceil(order.length / perPage));
    page = Math.min(Math.max(page, 0), pages - 1);
    order.slice(page * perPage, (page + 1) * perPage).forEach(function (item) {
      var tr = h("tr");
      if (opts.onRow) {
        tr.classList.add("clickable");
        tr.addEventListener("click", function () {
          if (selectedTr) selectedTr.classList.remove("selected");
          selectedTr = tr; tr.classList.add("selected");
          opts.onRow(item);
        });
      }
      columns.forEach(function (col) { tr.appendChild(h("td", {cls: col.num ? "num" : null}, col.get(item))); });
      tbody.appendChild(tr);
    });
    nav.textContent = "";
    if (pages > 1) {
      add(nav, [
        h("button", {type: "button", text: "‹ prev", disabled: page === 0 ? "disabled" : null, onclick: function () { page--; draw(); }}),
        h("span", {text: "page " + (page + 1) + " of " + pages + " · " + fmtInt(order.length) + " rows"}),
        h("button", {type: "button", text: "next ›", disabled: page >= pages - 1 ? "disabled" : null, onclick: function () { page++; draw(); }})
      ]);
    } else {
      add(nav, h("span", {text: fmtInt(order.length) + (order.length === 1 ? " row" : " rows")}));
    }
  }
  draw();
  add(wrap, [table, nav]);
  return wrap;
}

// ---- map -------------------------------------------------------------------------------
var MAP = (function () {
  var M = DATA.map || {};
  var canvas = document.getElementById("map-canvas");
  var tip = document.getElementById("map-tip");
  var n = (M.x || []).length;
  var api = {select: function () {}};
  if (!canvas) return api;
  var count = document.getElementById("map-count");
  if (!n) {
    canvas.parentElement.replaceWith(h("p", {cls: "muted", text: "No rows with 2-D coordinates to draw."}));
    return api;
  }
  add(count, fmtInt(M.shown) + " of " + fmtInt(M.total) + " rows drawn" +
    (M.shown < M.placed ? " (seeded sample; all " + fmtInt(M.flagged) + " flagged rows kept)" : ""));
  var ctx = canvas.getContext("2d");
  var W = 0, H = 0, dpr = 1, zoom = 1, panX = 0, panY = 0, base = 1, offX = 0, offY = 0;
  var mode = "cluster", selected = null, hover = -1;
  var sx = new Float32Array(n), sy = new Float32Array(n);
  function clusterColour(c) {
    if (c === null || c === undefined || c < 0) return "#b8bec6";
    return "hsl(" + ((c * 137.508) % 360).toFixed(1) + ",62%," + (c % 2 ? "46%" : "56%") + ")";
  }
  function colour(i) {
    if (mode === "issue") return M.m[i] ? CHECK_COLOURS[M.k[i] % CHECK_COLOURS.length] || "#495057" : "#c9ced6";
    return clusterColour(M.c[i]);
  }
  function layout() {
    var rect = canvas.getBoundingClientRect();
    W = Math.max(100, rect.width); H = Math.max(100, rect.height);
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    var pad = 14;
    base = Math.min((W - 2 * pad) / M.w, (H - 2 * pad) / M.h);
    offX = (W - M.w * base) / 2; offY = (H - M.h * base) / 2;
    draw();
  }
  function project() {
    for (var i = 0; i < n; i++) {
      sx[i] = (offX + M.x[i] * base) * zoom + panX;
      sy[i] = (offY + M.y[i] * base) * zoom + panY;
    }
  }
  function drawBatch(indices, radius, stroke) {
    var batches = {};
    indices.forEach(function (i) { var c = colour(i); (batches[c] = batches[c] || []).push(i); });
    Object.keys(batches).forEach(function (c) {
      ctx.beginPath();
      batches[c].forEach(function (i) {
        if (sx[i] < -5 || sy[i] < -5 || sx[i] > W + 5 || sy[i] > H + 5) return;
        ctx.moveTo(sx[i] + radius, sy[i]);
        ctx.arc(sx[i], sy[i], radius, 0, 6.2832);
      });
      ctx.fillStyle = c; ctx.fill();
      if (stroke) { ctx.lineWidth = 0.8; ctx.strokeStyle = "#1d2330"; ctx.stroke(); }
    });
  }
  function draw() {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    project();
    var dim = [], plain = [], flagged = [];
    for (var i = 0; i < n; i++) {
      if (selected !== null && M.c[i] !== selected) dim.push(i);
      else if (M.m[i]) flagged.push(i);
      else plain.push(i);
    }
    if (dim.length) {
      ctx.beginPath();
      dim.forEach(function (i) { ctx.moveTo(sx[i] + 1.6, sy[i]); ctx.arc(sx[i], sy[i], 1.6, 0, 6.2832); });
      ctx.fillStyle = "#e4e7eb"; ctx.fill();
    }
    var r = Math.min(5, 2 * Math.sqrt(zoom));
    drawBatch(plain, mode === "issue" ? r * 0.8 : r, false);
    drawBatch(flagged, r * 1.5, true);
    if (hover >= 0) {
      ctx.beginPath(); ctx.arc(sx[hover], sy[hover], r * 2.4, 0, 6.2832);
      ctx.lineWidth = 2; ctx.strokeStyle = "#2f5fd0"; ctx.stroke();
    }
  }
  function legend() {
    var host = document.getElementById("map-legend");
    host.textContent = "";
    if (mode === "issue") {
      add(host, h("span", null, [h("span", {cls: "sw", style: "background:#c9ced6"}), "no issue"]));
      CHECKS.forEach(function (name, i) {
        var total = 0;
        for (var j = 0; j < n; j++) if (M.m[j] && M.k[j] === i) total++;
        add(host, h("span", null, [h("span", {cls: "sw", style: "background:" + CHECK_COLOURS[i % CHECK_COLOURS.length]}), name + " (" + fmtInt(total) + ")"]));
      });
      add(host, h("span", {cls: "muted", text: "a row flagged by several checks takes the colour of its most severe finding"}));
    } else {
      add(host, h("span", {cls: "muted", text: "colour = cluster (" + fmtInt(CLUSTERS.filter(function (c) { return c.id >= 0; }).length) + " clusters); grey = unclustered; outlined = flagged by a check"}));
    }
  }
  function nearest(mx, my) {
    var best = -1, bestD = 64;
    for (var i = 0; i < n; i++) {
      if (selected !== null && M.c[i] !== selected) continue;
      var dx = sx[i] - mx, dy = sy[i] - my, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  function showTip(i, mx, my) {
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = "";
    add(tip, [
      h("div", {cls: "h", text: "row " + M.row[i] + " · " + clusterName(M.c[i])}),
      h("div", {text: M.p[i] === null || M.p[i] === undefined ? "(no prompt)" : M.p[i]})
    ]);
    if (M.m[i]) add(tip, h("div", {cls: "f", text: "flagged: " + flagNames(M.m[i]).join(", ") + " (" + sevName(M.s[i]) + ")"}));
    tip.hidden = false;
    var left = mx + 14, top = my + 14;
    if (left + tip.offsetWidth > W) left = Math.max(0, mx - tip.offsetWidth - 14);
    if (top + tip.offsetHeight > H) top = Math.max(0, my - tip.offsetHeight - 14);
    tip.style.left = left + "px"; tip.style.top = top + "px";
  }
  var dragging = null, moved = false, pending = null;
  function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  canvas.addEventListener("mousemove", function (e) {
    var p = local(e);
    if (dragging) {
      panX += p[0] - dragging[0]; panY += p[1] - dragging[1];
      if (Math.abs(p[0] - dragging[0]) + Math.abs(p[1] - dragging[1]) > 0) moved = true;
      dragging = p; tip.hidden = true; draw(); return;
    }
    if (pending) return;
    pending = window.requestAnimationFrame(function () {
      pending = null;
      var i = nearest(p[0], p[1]);
      if (i !== hover) { hover = i; draw(); }
      showTip(i, p[0], p[1]);
    });
  });
  canvas.addEventListener("mouseleave", function () { dragging = null; hover = -1; tip.hidden = true; draw(); });
  canvas.addEventListener("mousedown", function (e) { dragging = local(e); moved = false; });
  window.addEventListener("mouseup", function () { dragging = null; });
  canvas.addEventListener("click", function (e) {
    if (moved) return;
    var p = local(e), i = nearest(p[0], p[1]);
    if (i >= 0) showCluster(M.c[i]);
    else api.select(null);
  });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = local(e), f = Math.exp(-e.deltaY * 0.0015);
    var z = Math.min(200, Math.max(0.5, zoom * f)); f = z / zoom; zoom = z;
    panX = p[0] - (p[0] - panX) * f; panY = p[1] - (p[1] - panY) * f;
    draw();
  }, {passive: false});
  document.getElementById("map-reset").addEventListener("click", function () { zoom = 1; panX = 0; panY = 0; draw(); });
  Array.prototype.forEach.call(document.querySelectorAll("input[name=map-colour]"), function (input) {
    input.addEventListener("change", function () { mode = input.value === "issue" ? "issue" : "cluster"; legend(); draw(); });
  });
  window.addEventListener("resize", layout);
  api.select = function (id) {
    selected = id === undefined ? null : id;
    var note = document.getElementById("map-selection");
    note.textContent = "";
    if (selected !== null) {
      add(note, ["Showing cluster " + clusterName(selected) + " — ",
        h("a", {href: "#cluster-detail", text: "its examples"}), " · ",
        h("a", {href: "#map", text: "show all", onclick: function (e) { e.preventDefault(); api.select(null); }})]);
    }
    draw();
  };
  legend();
  layout();
  return api;
})();

// ---- clusters --------------------------------------------------------------------------
var clusterDetail = document.getElementById("cluster-detail");
function showCluster(id) {
  var c = CLUSTER_BY_ID[id];
  MAP.select(id);
  if (!clusterDetail) return;
  clusterDetail.textContent = "";
  if (!c) return;
  clusterDetail.className = "detail";
  var facts = [fmtInt(c.size) + " rows"];
  if (c.stability !== null) facts.push("stability " + fmtNum(c.stability));
  if (c.format_consistency !== null) facts.push("format consistency " + fmtPct(c.format_consistency));
  if (c.format_majority) facts.push("majority format: " + c.format_majority);
  var reps = {};
  (c.representatives || []).forEach(function (r) { reps[r] = true; });
  var items = (c.examples || []).map(function (row) { return {row: row}; });
  add(clusterDetail, [
    h("h3", {text: "Cluster " + clusterName(id)}),
    h("p", {cls: "muted", text: facts.join(" · ")}),
    c.keywords && c.keywords.length ? h("p", {cls: "chips"}, c.keywords.map(function (k) { return h("span", {cls: "chip", text: k}); })) : null,
    h("p", {cls: "muted", text: "Showing " + fmtInt(items.length) + " of " + fmtInt(c.size) + " rows: representatives first, then flagged rows, then a seeded sample."}),
    dataTable([
      {title: "row", get: function (it) { return it.row; }, sort: function (it) { return it.row; }, num: true},
      {title: "line", get: function (it) { var l = textOf(it.row, 0); return l === null ? "—" : l; }, num: true},
      {title: "role", get: function (it) {
        var flags = flagNames(textOf(it.row, 4) || 0);
        return [reps[it.row] ? h("span", {cls: "badge ok", text: "representative"}) : null, " ",
          flags.length ? h("span", {cls: "badge bad", text: flags.join(", ")}) : null];
      }},
      {title: "prompt", get: function (it) { return textCell(textOf(it.row, 1)); }},
      hasText(c.examples || [], 2) ? {title: "response", get: function (it) { return textCell(textOf(it.row, 2)); }} : null,
      hasText(c.examples || [], 3) ? {title: "label", get: function (it) { return textCell(textOf(it.row, 3)); }} : null
    ].filter(Boolean), items)
  ]);
}
(function () {
  var host = document.getElementById("clusters-table");
  if (!host) return;
  if (!CLUSTERS.length) { add(host, h("p", {cls: "muted", text: "No clusters."})); return; }
  var columns = [
    {title: "cluster", get: function (c) { return c.id < 0 ? "—" : c.id; }, sort: function (c) { return c.id; }, num: true},
    {title: "label", get: function (c) { return c.label; }, sort: function (c) { return c.label; }},
    {title: "size", get: function (c) { return fmtInt(c.size); }, sort: function (c) { return c.size; }, num: true},
    {title: "stability", get: function (c) { return fmtNum(c.stability); }, sort: function (c) { return c.stability; }, num: true},
    {title: "format consistency", get: function (c) { return fmtPct(c.format_consistency); }, sort: function (c) { return c.format_consistency; }, num: true}
  ];
  CHECKS.forEach(function (name, i) {
    columns.push({title: name, num: true, get: function (c) { return c.issues[i] ? fmtInt(c.issues[i]) : "·"; }, sort: function (c) { return c.issues[i]; }});
  });
  columns.push({title: "keywords", get: function (c) { return (c.keywords || []).slice(0, 6).join(", "); }});
  add(host, dataTable(columns, CLUSTERS, {onRow: function (c) { showCluster(c.id); }}));
})();

// ---- checks ----------------------------------------------------------------------------
function groupsView(groups, check) {
  var wrap = h("div");
  var perPage = 5, page = 0;
  var list = h("div"), nav = h("div", {cls: "pager"});
  var hasLabel = groups.some(function (g) { return hasText(g.rows, 3); });
  var hasResponse = groups.some(function (g) { return hasText(g.rows, 2); });
  function member(row, reason) {
    return h("div", {cls: "member"}, [
      h("div", {cls: "muted", text: "row " + row + (textOf(row, 0) !== null && textOf(row, 0) !== undefined ? " · line " + textOf(row, 0) : "")}),
      reason ? h("div", {cls: "sev sev-warning", text: reason}) : h("div", {cls: "muted", text: "kept (not flagged)"}),
      hasLabel ? [h("div", {cls: "field", text: "label"}), h("div", {cls: "lab txt", text: textOf(row, 3) === null || textOf(row, 3) === undefined ? "—" : textOf(row, 3)})] : null,
      h("div", {cls: "field", text: "prompt"}), textCell(textOf(row, 1)),
      hasResponse ? [h("div", {cls: "field", text: "response"}), textCell(textOf(row, 2))] : null
    ]);
  }
  function draw() {
    list.textContent = ""; nav.textContent = "";
    var pages = Math.max(1, Math.ceil(groups.length / perPage));
    groups.slice(page * perPage, (page + 1) * perPage).forEach(function (g) {
      add(list, h("div", {cls: "group"}, [
        h("div", null, [h("b", {text: "group " + g.group}), h("span", {cls: "muted", text: " · " + fmtInt(g.size) + " rows" + (g.size > g.rows.length ? " (first " + g.rows.length + " shown)" : "")})]),
        h("div", {cls: "members"}, g.rows.map(function (row, j) { return member(row, (g.reasons || [])[j]); }))
      ]));
    });
    if (pages > 1) add(nav, [
      h("button", {type: "button", text: "‹ prev", disabled: page === 0 ? "disabled" : null, onclick: function () { page--; draw(); }}),
      h("span", {text: "groups page " + (page + 1) + " of " + pages + " · " + fmtInt(groups.length) + " groups"}),
      h("button", {type: "button", text: "next ›", disabled: page >= pages - 1 ? "disabled" : null, onclick: function () { page++; draw(); }})
    ]);
  }
  draw();
  add(wrap, [list, nav]);
  return wrap;
}
Array.prototype.forEach.call(document.querySelectorAll(".js-check"), function (host) {
  var i = Number(host.getAttribute("data-check"));
  var F = (DATA.findings || [])[i], G = (DATA.groups || [])[i] || [];
  if (G.length) add(host, [h("h3", {text: "Groups, members side by side"}), groupsView(G, i)]);
  if (!F || !F.row.length) { add(host, h("p", {cls: "muted", text: "No rows flagged."})); return; }
  var items = F.row.map(function (row, j) {
    return {row: row, score: F.score[j], sev: F.sev[j], group: F.group[j], reason: F.reason[j], suggestion: F.suggestion[j]};
  });
  var grouped = items.some(function (it) { return it.group !== null && it.group !== undefined; });
  add(host, [h("h3", {text: "Worst rows"}), dataTable([
    {title: "severity", get: function (it) { return sevBadge(it.sev); }, sort: function (it) { return it.sev; }},
    {title: "score", get: function (it) { return fmtNum(it.score, 3); }, sort: function (it) { return it.score; }, num: true},
    {title: "row", get: function (it) { return it.row; }, sort: function (it) { return it.row; }, num: true},
    grouped ? {title: "group", get: function (it) { return it.group === null ? "" : it.group; }, sort: function (it) { return it.group; }, num: true} : null,
    {title: "prompt", get: function (it) { return textCell(textOf(it.row, 1)); }},
    hasText(F.row, 2) ? {title: "response", get: function (it) { return textCell(textOf(it.row, 2)); }} : null,
    hasText(F.row, 3) ? {title: "label", get: function (it) { return textCell(textOf(it.row, 3)); }} : null,
    {title: "reason", get: function (it) { return textCell(it.reason); }},
    {title: "suggestion", get: function (it) { return textCell(it.suggestion); }}
  ].filter(Boolean), items)]);
});
})();
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
