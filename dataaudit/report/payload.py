"""The data the report's viewer draws: the map, the cluster table, each check's worst rows.

Everything here is computed with polars over whole columns and handed to the page once, as
JSON inside a ``<script type="application/json">`` element (see :func:`json_for_script`). The
map is downsampled deterministically but keeps every flagged row; tables hold the worst rows
only and paginate in the browser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.jsonsafe import json_safe
from dataaudit.severity import SEVERITIES

if TYPE_CHECKING:
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
SEVERITY_NAMES = SEVERITIES
_NO_SEVERITY = len(SEVERITY_NAMES)
_SAMPLE_SEED = 0
#: The findings columns the report reads; older audits may lack some (``kind`` before schema 2).
_FINDING_COLUMNS = {
    **FINDING_SCHEMA,
    # The reference fine-tune's per-row verdict (confirmed / contradicted / no evidence), when it ran.
    "verdict": pl.String,
}


def viewer_payload(
    result: AuditResult, findings: pl.DataFrame, checks: Sequence[str], *, max_map_points: int, rows_per_page: int
) -> dict[str, Any]:
    """Everything the script draws, for ``checks`` in this order; ``findings`` as from :func:`own_findings`."""
    table = _row_table(result.rows, findings, checks)
    per_check = [_findings_payload(findings, name) for name in checks]
    groups = [_groups_payload(result.rows, findings, name) for name in checks]
    clusters = _clusters_payload(result, table, checks)
    referenced = _referenced_rows(per_check, groups, clusters)
    return {
        "rows_per_page": max(1, int(rows_per_page)),
        "checks": list(checks),
        "severities": list(SEVERITY_NAMES) + ["none"],
        "map": _map_payload(result.rows, table, max_map_points),
        "clusters": clusters,
        "findings": per_check,
        "groups": groups,
        "texts": _texts(result.rows, table, referenced),
    }


def _row_table(rows: pl.DataFrame, findings: pl.DataFrame, checks: Sequence[str]) -> pl.DataFrame:
    """Per row: cluster, coordinates, one flag per check, the worst severity and the check behind it."""
    if "row" not in rows.columns:
        schema = {
            "row": pl.Int64,
            "cluster": pl.Int64,
            "x": pl.Float64,
            "y": pl.Float64,
            "mask": pl.Int64,
            "severity": pl.Int64,
            "worst_check": pl.Int64,
            "worst_score": pl.Float64,
            "key": pl.Float64,
        }
        return pl.DataFrame(schema={**schema, **{f"f{i}": pl.Boolean for i in range(len(checks))}})
    columns: list[pl.Expr] = [pl.col("row").cast(pl.Int64)]
    columns.append(_int_column(rows, "cluster", -1))
    for axis in ("x", "y"):
        columns.append(
            pl.col(axis).cast(pl.Float64).fill_nan(None).alias(axis)
            if axis in rows.columns
            else pl.lit(None, pl.Float64).alias(axis)
        )
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
    mask = (
        pl.sum_horizontal([pl.col(f).cast(pl.Int64) * (1 << i) for i, f in enumerate(flag_names)])
        if flag_names
        else pl.lit(0, pl.Int64)
    )
    table = table.with_columns(mask.cast(pl.Int64).alias("mask"))

    position = {name: index for index, name in enumerate(checks)}
    worst = (
        findings.with_columns(
            pl.col("severity")
            .replace_strict(
                {s: i for i, s in enumerate(SEVERITY_NAMES)}, default=len(SEVERITY_NAMES) - 1, return_dtype=pl.Int64
            )
            .alias("severity"),
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
        pl.when(pl.col("severity").is_not_null())
        .then(pl.col("severity"))
        .when(pl.col("mask") > 0)
        .then(pl.lit(len(SEVERITY_NAMES) - 1, pl.Int64))
        .otherwise(pl.lit(_NO_SEVERITY, pl.Int64))
        .alias("severity"),
        pl.col("worst_score").fill_nan(None),
    )
    # One seeded random number per row: the order in which unflagged rows are sampled.
    key = np.random.default_rng(_SAMPLE_SEED).random(table.height)
    return table.with_columns(pl.Series("key", key, dtype=pl.Float64))


def own_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """The findings frame with every column the report reads, whatever an older audit lacked."""
    defaults = _FINDING_COLUMNS
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
    quota = pl.max_horizontal(
        (pl.col("_size") * rate).floor(), pl.min_horizontal(pl.col("_size"), pl.lit(MIN_MAP_POINTS_PER_CLUSTER))
    )
    kept = ranked.filter(pl.col("_rank") <= quota)
    if kept.height > budget:
        kept = kept.sort(["_rank", "key"]).head(budget)
    return kept.drop("_rank", "_size")


def _map_payload(rows: pl.DataFrame, table: pl.DataFrame, max_points: int) -> dict[str, Any]:
    placed = table.filter(
        pl.col("x").is_not_null() & pl.col("y").is_not_null() & pl.col("x").is_finite() & pl.col("y").is_finite()
    )
    empty = {
        "total": table.height,
        "placed": placed.height,
        "shown": 0,
        "flagged": 0,
        "w": 1,
        "h": 1,
        "row": [],
        "x": [],
        "y": [],
        "c": [],
        "k": [],
        "s": [],
        "m": [],
        "p": [],
    }
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
    frame = (
        result.clusters
        if "cluster" in result.clusters.columns
        else pl.DataFrame({"cluster": pl.Series([], dtype=pl.Int64)})
    )
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
        records.append(
            _cluster_record(cluster_id, cluster, count_of.get(cluster_id), checks, examples, representatives)
        )
    for cluster_id in sorted(set(count_of) - seen, key=lambda c: (c < 0, c)):
        label = "unclustered" if cluster_id < 0 else f"cluster {cluster_id}"
        records.append(
            _cluster_record(cluster_id, {"label": label}, count_of[cluster_id], checks, examples, representatives)
        )
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
    rep_rows = (
        pl.DataFrame({"row": [row for rows in representatives.values() for row in rows]}, schema={"row": pl.Int64})
        .unique()
        .with_columns(pl.lit(True).alias("_rep"))
    )
    ordered = (
        table.select("row", "cluster", "mask", "severity", "worst_score", "key")
        .join(rep_rows, on="row", how="left")
        .with_columns(
            pl.when(pl.col("_rep").fill_null(False))
            .then(0)
            .when(pl.col("mask") > 0)
            .then(1)
            .otherwise(2)
            .alias("_priority")
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
    own = findings.filter(pl.col("check") == check)
    ranked = (
        own.with_columns(
            pl.col("severity").replace_strict(
                {s: i for i, s in enumerate(SEVERITY_NAMES)}, default=len(SEVERITY_NAMES) - 1, return_dtype=pl.Int64
            )
        )
        .sort(["severity", "score", "row"], nulls_last=True)
        .head(MAX_FINDINGS_PER_CHECK)
    )
    return {
        "total": own.height,
        "row": ranked.get_column("row").to_list(),
        "score": ranked.get_column("score").round(4).to_list(),
        "sev": ranked.get_column("severity").to_list(),
        "group": ranked.get_column("group").to_list(),
        "kind": ranked.get_column("kind").to_list(),
        "reason": ranked.get_column("reason").to_list(),
        "suggestion": ranked.get_column("suggestion").to_list(),
        "suggested_value": ranked.get_column("suggested_value").to_list(),
        "verdict": ranked.get_column("verdict").to_list(),
    }


def _groups_payload(rows: pl.DataFrame, findings: pl.DataFrame, check: str) -> list[dict[str, Any]]:
    """Groups of one check (duplicates, conflicts), worst first, each with its members' rows."""
    own = findings.filter(pl.col("check") == check)
    column = f"{check}_group"
    if column in rows.columns and "row" in rows.columns and rows.schema[column].is_integer():
        membership = rows.select(pl.col("row").cast(pl.Int64), pl.col(column).cast(pl.Int64).alias("group"))
    else:
        membership = own.select("row", "group")
    membership = membership.drop_nulls().filter(pl.col("group") >= 0).unique()
    if membership.height == 0:
        return []
    scored = (
        own.select(
            "row",
            "score",
            "reason",
            pl.col("severity").replace_strict(
                {s: i for i, s in enumerate(SEVERITY_NAMES)}, default=len(SEVERITY_NAMES) - 1, return_dtype=pl.Int64
            ),
        )
        .sort(["severity", "score"], nulls_last=True)
        .unique(subset="row", keep="first")
    )
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


def _referenced_rows(
    findings: Sequence[Mapping], groups: Sequence[Sequence[Mapping]], clusters: Sequence[Mapping]
) -> list[int]:
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
    chosen = rows.with_columns(pl.col("row").cast(pl.Int64)).filter(
        pl.col("row").is_in(pl.Series(wanted, dtype=pl.Int64).implode())
    )
    picked = chosen.select(
        "row",
        _int_column(chosen, "line", None).alias("line"),
        _truncated(chosen, "prompt", TEXT_CHARS).alias("prompt"),
        _truncated(chosen, "response", TEXT_CHARS).alias("response"),
        _truncated(chosen, "label", LABEL_CHARS).alias("label"),
    ).join(table.select("row", "mask"), on="row", how="left")
    return {
        str(row): [line, prompt, response, label, mask or 0]
        for row, line, prompt, response, label, mask in picked.iter_rows()
    }


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


def json_for_script(payload: Any) -> str:
    """JSON that cannot end its ``<script>`` element: every ``<``, ``>`` and ``&`` is a ``\\u`` escape."""
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # a NaN or an odd type somewhere: clean the whole payload once
        text = json.dumps(json_safe(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


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


def _text(value: Any) -> str:
    return "" if value is None else str(value)
