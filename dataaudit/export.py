"""Export: turn an audit into a cleaned dataset with a reason for every dropped row.

Built on the lossless partition writer: kept records are written byte-for-byte, every input
line lands in exactly one of the two files. Options that must change kept records —
``annotate``, ``to`` (another format) and ``relabel`` — say so, and log every change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import polars as pl

from dataaudit.checks import BUILTIN_CHECKS
from dataaudit.checks.base import SEVERITY_RANK
from dataaudit.dataset import Dataset
from dataaudit.errors import UsageError
from dataaudit.io.atomic import atomic_output
from dataaudit.io.writers import check_output_paths, write_partition

if TYPE_CHECKING:
    from dataaudit.report.model import AuditResult

#: Key added to each record by ``annotate``; reserved so it can't collide with user fields.
ANNOTATION_KEY = "_dataaudit"
TARGET_FORMATS = ("openai", "alpaca", "sharegpt")


@dataclass(frozen=True)
class ExportSummary:
    kept: int
    dropped: int
    bad: int
    blank: int
    relabeled: int
    dropped_by_check: dict[str, int]


def drop_reasons(findings: pl.DataFrame, *, drop: Iterable[str] = BUILTIN_CHECKS, min_severity: str = "warning") -> dict[int, list[str]]:
    """``row`` → reasons, for findings of the chosen checks at or above ``min_severity``."""
    if min_severity not in SEVERITY_RANK:
        raise UsageError(f"unknown severity {min_severity!r}; one of {', '.join(SEVERITY_RANK)}")
    drop = list(drop)
    unknown = sorted(set(drop) - set(findings.get_column("check").unique().to_list()) - set(BUILTIN_CHECKS))
    if unknown:
        raise UsageError(f"unknown check(s) to drop: {', '.join(unknown)}")
    limit = SEVERITY_RANK[min_severity]
    chosen = findings.filter(
        pl.col("check").is_in(drop) & (pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int64) <= limit)
    ).sort(["row", "check"])
    reasons: dict[int, list[str]] = {}
    for row, check, severity, reason in chosen.select("row", "check", "severity", "reason").iter_rows():
        reasons.setdefault(int(row), []).append(f"{check} ({severity}): {reason}")
    return reasons


def relabel_suggestions(findings: pl.DataFrame, *, min_severity: str = "warning") -> dict[int, str]:
    """Confident label suggestions from the conflict check: ``row`` → suggested label."""
    limit = SEVERITY_RANK[min_severity]
    chosen = findings.filter(
        (pl.col("check") == "conflict")
        & pl.col("suggestion").is_not_null()
        & pl.col("reason").str.contains("label")
        & (pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int64) <= limit)
    )
    suggestions: dict[int, str] = {}
    for row, suggestion in chosen.select("row", "suggestion").iter_rows():
        label = _label_from_suggestion(suggestion)
        if label is not None:
            suggestions[int(row)] = label
    return suggestions


def _label_from_suggestion(suggestion: str) -> str | None:
    """Suggestions read like "relabel as 'card_arrival'" or plain "card_arrival"."""
    text = suggestion.strip()
    if "'" in text:
        parts = text.split("'")
        return parts[1] if len(parts) >= 3 and parts[1] else None
    return text if text and " " not in text else None


def export_clean(
    dataset: Dataset,
    result: "AuditResult",
    *,
    clean: str | os.PathLike,
    rejected: str | os.PathLike,
    drop: Sequence[str] = BUILTIN_CHECKS,
    min_severity: str = "warning",
    annotate: bool = False,
    to: str | None = None,
    relabel: bool = False,
    changes: str | os.PathLike | None = None,
) -> ExportSummary:
    """Write the cleaned dataset and the rejected lines.

    With no transforming option, ``clean`` holds kept records byte-for-byte. ``annotate``
    keeps every record and adds its findings under :data:`ANNOTATION_KEY`; ``to`` converts kept
    records to another format; ``relabel`` applies the conflict check's label suggestions and
    logs each change to ``changes`` (default: ``<clean>.changes.jsonl``).
    """
    expected = result.summary.get("dataset", {}).get("fingerprint")
    if expected is not None and expected != dataset.fingerprint():
        raise UsageError("the data differs from what this audit saw (fingerprint mismatch); re-run the audit")
    if to is not None and to not in TARGET_FORMATS:
        raise UsageError(f"unknown target format {to!r}; one of {', '.join(TARGET_FORMATS)}")
    changes_path = Path(changes) if changes else Path(f"{clean}.changes.jsonl")
    check_output_paths(dataset, clean, rejected, changes_path if relabel else None)
    reasons = {} if annotate else drop_reasons(result.findings, drop=drop, min_severity=min_severity)
    relabels = relabel_suggestions(result.findings, min_severity=min_severity) if relabel else {}
    relabels = {row: label for row, label in relabels.items() if row not in reasons}
    by_check: dict[str, int] = {}
    for row_reasons in reasons.values():
        for check in {reason.split(" ", 1)[0] for reason in row_reasons}:
            by_check[check] = by_check.get(check, 0) + 1

    kept_line = None
    if annotate or to or relabels:
        annotations = _annotations(result.findings) if annotate else None
        kept_line = _transformed_lines(dataset, lambda row, record: _transform(record, row, annotations, to, relabels))
    counts = write_partition(dataset, clean=clean, rejected=rejected, drops=reasons, kept_line=kept_line)
    if relabels:
        _write_changes(dataset, relabels, changes_path)
    return ExportSummary(kept=counts.kept, dropped=counts.dropped, bad=counts.bad, blank=counts.blank,
                         relabeled=len(relabels), dropped_by_check=dict(sorted(by_check.items())))


def _annotations(findings: pl.DataFrame) -> dict[int, list[dict]]:
    notes: dict[int, list[dict]] = {}
    for finding in findings.iter_rows(named=True):
        notes.setdefault(int(finding["row"]), []).append(
            {key: finding[key] for key in ("check", "severity", "score", "reason", "suggestion", "group")}
        )
    return notes


def _transform(record: dict, row: int, annotations: Mapping[int, list[dict]] | None, to: str | None, relabels: Mapping[int, str]) -> dict:
    """``annotations`` is None unless annotating; then every record gets the key, findings or not."""
    canonical = record["canonical"]
    original = dict(record["original"])
    if row in relabels:
        original = _with_label(original, canonical, relabels[row])
        canonical = {**canonical, "label": relabels[row], "response": relabels[row]}
    output = _convert(canonical, to) if to else original
    if annotations is not None:
        output[ANNOTATION_KEY] = {"findings": annotations.get(row, [])}
    return output


def _with_label(original: dict, canonical: dict, label: str) -> dict:
    """Replace the label where the record keeps it: the field whose value is the old label."""
    old = canonical["label"] if canonical["label"] is not None else canonical["response"]
    updated = dict(original)
    for key, value in original.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) == old:
            updated[key] = label
            return updated
    messages = updated.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "assistant":
                message["content"] = label
                break
    return updated


def _convert(canonical: dict, to: str) -> dict:
    messages = canonical["messages"]
    if to == "openai":
        return {"messages": messages}
    if to == "sharegpt":
        names = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}
        return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in messages]}
    record = {"instruction": canonical["prompt"], "input": "", "output": canonical["response"] or ""}
    if canonical["system"]:
        record["system"] = canonical["system"]
    return record


def _transformed_lines(dataset: Dataset, transform) -> Callable[[int], bytes]:
    """Output lines for kept records that must change: ``transform(row, record) -> dict``."""
    rows = dataset.frame.get_column("row").to_list()
    raws = dataset.frame.get_column("record").to_list()
    canonical = dataset.frame.select("messages", "system", "prompt", "response", "label").to_dicts()

    def line(index: int) -> bytes:
        record = {"original": json.loads(raws[index].decode("utf-8-sig")), "canonical": canonical[index]}
        return json.dumps(transform(rows[index], record), ensure_ascii=False).encode("utf-8") + b"\n"

    return line


def _write_changes(dataset: Dataset, relabels: Mapping[int, str], path: Path) -> None:
    old = dict(zip(dataset.frame.get_column("row").to_list(), dataset.frame.get_column("label").to_list()))
    lines = dict(zip(dataset.frame.get_column("row").to_list(), dataset.frame.get_column("line").to_list()))
    with atomic_output(path) as out:
        for row in sorted(relabels):
            entry = {"row": row, "line": lines[row], "change": "relabel", "from": old.get(row), "to": relabels[row]}
            out.write(json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n")


def to_hf_dataset(dataset: Dataset, result: "AuditResult | None" = None):
    """The canonical frame (with audit columns when given) as a Hugging Face ``datasets.Dataset``."""
    try:
        import datasets
    except ImportError as error:
        raise UsageError("to_hf_dataset needs the optional package 'datasets' (pip install datasets)") from error
    return datasets.Dataset.from_polars(_joined(dataset, result))


def to_parquet(dataset: Dataset, path: str | os.PathLike, result: "AuditResult | None" = None) -> Path:
    """The canonical frame (with audit columns when given) as Parquet."""
    from dataaudit.io.atomic import atomic_path

    with atomic_path(path) as temp:
        _joined(dataset, result).write_parquet(temp)
    return Path(path)


def _joined(dataset: Dataset, result: "AuditResult | None") -> pl.DataFrame:
    frame = dataset.frame.with_columns(pl.col("record").cast(pl.String, strict=False))
    if result is None:
        return frame
    audit_columns = [c for c in result.rows.columns if c.endswith(("_score", "_issue", "_group")) or c in ("cluster", "nearest_cluster", "x", "y")]
    return frame.join(result.rows.select("row", *audit_columns), on="row", how="left")
