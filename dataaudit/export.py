"""Export: turn an audit into a cleaned dataset with a reason for every dropped row.

Built on the lossless partition writer: kept records are written byte-for-byte, every input
line lands in exactly one of the two files. Options that must change kept records —
``annotate``, ``to`` (another format) and ``relabel`` — say so, and log every change.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import polars as pl

from dataaudit.checks import available_checks, relabel_kinds
from dataaudit.dataset import Dataset
from dataaudit.errors import UsageError
from dataaudit.io.atomic import atomic_output
from dataaudit.io.convert import TARGET_FORMATS, convert, unrepresentable
from dataaudit.io.writers import check_output_paths, write_partition
from dataaudit.severity import Severity, at_least

if TYPE_CHECKING:
    from dataaudit.result import AuditResult

#: Key added to each record by ``annotate``; reserved so it can't collide with user fields.
ANNOTATION_KEY = "_dataaudit"


@dataclass(frozen=True)
class ExportSummary:
    """Row counts of one export: where every input line went (the partition is lossless).

    ``bad`` and ``blank`` are input lines that never became rows; ``dropped_by_check`` counts
    each dropped row once per check that dropped it.
    """

    kept: int
    dropped: int
    bad: int
    blank: int
    relabeled: int
    dropped_by_check: dict[str, int]
    #: Of ``relabeled``, rows the drop policy flagged only for their label: kept, not dropped.
    relabeled_kept: int = 0
    #: Where the relabels were logged (None when nothing was relabelled); not part of equality.
    changes: str | None = field(default=None, compare=False)


def dropping_findings(findings: pl.DataFrame, *, drop: Iterable[str] | None = None, min_severity: str = "warning") -> pl.DataFrame:
    """Keep the findings that drop their rows, sorted by row and check.

    Those are the findings of the chosen checks (None: every check with findings, plug-ins
    included) at or above ``min_severity``.
    """
    Severity.parse(min_severity)
    present = set(findings.get_column("check").unique().to_list())
    drop = sorted(present) if drop is None else list(drop)
    unknown = sorted(set(drop) - present - set(available_checks()))
    if unknown:
        raise UsageError(f"unknown check(s) to drop: {', '.join(unknown)}")
    return findings.filter(pl.col("check").is_in(drop) & at_least(min_severity)).sort(["row", "check"])


def drop_reasons(findings: pl.DataFrame, *, drop: Iterable[str] | None = None, min_severity: str = "warning") -> dict[int, list[str]]:
    """``row`` → reasons, for findings of the chosen checks at or above ``min_severity``.

    ``drop=None`` drops on every check that has findings, registered plug-ins included.
    """
    return _reasons(dropping_findings(findings, drop=drop, min_severity=min_severity))


def only_confirmed(findings: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    """The ``findings`` whose (row, check) a fine-tune confirmed (``verdict == "confirmed"``)."""
    from dataaudit.row_verdicts import CONFIRMED

    confirmed = verdicts.filter(pl.col("verdict") == CONFIRMED).select("row", "check").unique()
    return findings.join(confirmed, on=["row", "check"], how="semi")


def _reasons(chosen: pl.DataFrame) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}
    for row, check, severity, reason in chosen.select("row", "check", "severity", "reason").iter_rows():
        reasons.setdefault(int(row), []).append(f"{check} ({severity}): {reason}")
    return reasons


def _kind_key() -> pl.Expr:
    return pl.concat_str([pl.col("check"), pl.col("kind")], separator=":")


def relabel_suggestions(findings: pl.DataFrame, *, min_severity: str = "warning") -> dict[int, str]:
    """Machine-applicable label fixes: ``row`` → the finding's ``suggested_value``.

    Read from the data fields (a ``check`` and ``kind`` whose :class:`~dataaudit.checks.Kind` says
    ``relabel``, plug-ins' kinds included; see :func:`~dataaudit.checks.relabel_kinds`), never from
    the prose, so labels with spaces, quotes or apostrophes are applied as they are. Where two
    findings suggest different labels for one row, the more severe (then lower-scored) wins.
    """
    chosen = findings.filter(
        _kind_key().is_in([f"{check}:{kind}" for check, kind in relabel_kinds()])
        & pl.col("suggested_value").is_not_null() & at_least(min_severity)
    ).sort(["row", "score"], descending=[False, False])
    suggestions: dict[int, str] = {}
    for row, value in chosen.select("row", "suggested_value").iter_rows():
        suggestions.setdefault(int(row), value)
    return suggestions


def export_clean(
    dataset: Dataset,
    result: "AuditResult",
    *,
    clean: str | os.PathLike | None = None,
    rejected: str | os.PathLike,
    drop: Sequence[str] | None = None,
    min_severity: str = "warning",
    annotate: bool = False,
    to: str | None = None,
    relabel: bool = False,
    changes: str | os.PathLike | None = None,
    confirmed_only: pl.DataFrame | None = None,
    out_dir: str | os.PathLike | None = None,
) -> ExportSummary:
    """Write the cleaned dataset and the rejected lines.

    ``clean`` is one JSONL file; ``out_dir`` instead mirrors the input's files, each cleaned
    in its own container (see :func:`dataaudit.io.shards.write_partition_dir`). With no
    transforming option, kept records are written byte-for-byte. ``annotate``
    keeps every record and adds its findings under :data:`ANNOTATION_KEY`; ``to`` converts kept
    records to another format; ``relabel`` applies the conflict check's label suggestions and
    logs each change to ``changes`` (default: ``<clean>.changes.jsonl``); with the default
    ``drop`` (None) a row whose dropping findings are all label fixes with a ``suggested_value``
    is relabelled and kept, while a check named in ``drop`` still drops it. ``confirmed_only``, a
    fine-tune's row verdicts (``finetune/row_verdicts.parquet``), drops only the flagged rows whose
    finding the fine-tune confirmed; the others are kept.
    """
    if (clean is None) == (out_dir is None):
        raise UsageError("choose where kept records go: one JSONL file (--out) or a folder mirroring the input (--out-dir)")
    result.require_same_data(dataset)
    if to is not None and to not in TARGET_FORMATS:
        raise UsageError(f"unknown target format {to!r}; one of {', '.join(TARGET_FORMATS)}")
    changes_path = Path(changes) if changes else Path(f"{clean if clean is not None else Path(out_dir) / 'export'}.changes.jsonl")
    check_output_paths(dataset, clean, rejected, changes_path if relabel else None)
    dropping = dropping_findings(result.findings, drop=drop, min_severity=min_severity)
    if annotate:  # annotating keeps every record; the choice of checks is still validated above
        dropping = dropping.clear()
    if confirmed_only is not None:
        dropping = only_confirmed(dropping, confirmed_only)
    relabels = relabel_suggestions(result.findings, min_severity=min_severity) if relabel else {}
    fixed = _label_fix_only_rows(dropping, relabels) if relabel and drop is None else []
    dropping = dropping.filter(~pl.col("row").is_in(fixed))  # the default keeps what it can fix
    reasons = _reasons(dropping)
    relabels = {row: label for row, label in relabels.items() if row not in reasons}
    by_check = dict(dropping.unique(["row", "check"]).group_by("check").len().iter_rows())
    if to is not None:
        _refuse_unrepresentable(dataset, to, dropped=reasons)

    kept_line = kept_table = None
    if annotate or to or relabels:
        annotations = _annotations(result.findings) if annotate else None
        kept_line = _transformed_lines(dataset, lambda row, record: _transform(record, row, annotations, to, relabels))
        kept_table = functools.partial(_transformed_table, dataset, annotations=annotations, to=to, relabels=relabels)
    if out_dir is not None:
        from dataaudit.io.shards import write_partition_dir

        counts = write_partition_dir(dataset, out_dir=out_dir, rejected=rejected, drops=reasons, kept_line=kept_line,
                                     kept_table=kept_table)
    else:
        counts = write_partition(dataset, clean=clean, rejected=rejected, drops=reasons, kept_line=kept_line)
    if relabels:
        _write_changes(dataset, relabels, changes_path)
    return ExportSummary(kept=counts.kept, dropped=counts.dropped, bad=counts.bad, blank=counts.blank,
                         relabeled=len(relabels), dropped_by_check=dict(sorted(by_check.items())),
                         relabeled_kept=len(fixed), changes=str(changes_path) if relabels else None)


def _label_fix_only_rows(dropping: pl.DataFrame, relabels: Mapping[int, str]) -> list[int]:
    """List the rows whose every dropping finding is a label fix with a ``suggested_value``.

    Relabelling them answers all their findings, so dropping them would throw away a fixed row.
    """
    fixable = _kind_key().is_in([f"{check}:{kind}" for check, kind in relabel_kinds()]) \
        & pl.col("suggested_value").is_not_null()
    rows = dropping.group_by("row").agg(fixable.all().alias("fixable")).filter(pl.col("fixable"))
    return sorted(row for row in rows.get_column("row").to_list() if row in relabels)


def kept_hf_dataset(dataset: Dataset, result: "AuditResult", *, original=None, drop: Sequence[str] | None = None,
                    min_severity: str = "warning"):
    """The kept rows as a ``datasets.Dataset``: what a notebook trains on next.

    ``original`` (the ``datasets.Dataset`` that was audited) is filtered with ``select`` so its
    features survive; otherwise the kept records are rebuilt from their original JSON.
    """
    try:
        import datasets
    except ImportError as error:
        raise UsageError("a datasets.Dataset export needs the optional package 'datasets' (pip install datasets)") \
            from error
    result.require_same_data(dataset)
    reasons = drop_reasons(result.findings, drop=drop, min_severity=min_severity)
    kept = dataset.frame.filter(~pl.col("row").is_in(list(reasons)))
    if original is not None:
        if isinstance(original, datasets.DatasetDict):
            from dataaudit.io.memory import _one_split

            original = _one_split(original, name="the DatasetDict")
        if len(original) != dataset.n_entries:
            raise UsageError(f"original has {len(original):,} rows, the audited data {dataset.n_entries:,}")
        return original.select(kept.get_column("row").to_list())
    records = [json.loads(raw.decode("utf-8-sig")) for raw in kept.get_column("record").to_list()]
    return datasets.Dataset.from_list(records)


def _annotations(findings: pl.DataFrame) -> dict[int, list[dict]]:
    notes: dict[int, list[dict]] = {}
    for finding in findings.iter_rows(named=True):
        notes.setdefault(int(finding["row"]), []).append(
            {key: finding[key] for key in ("check", "kind", "severity", "score", "reason", "suggestion", "suggested_value", "group")}
        )
    return notes


def _transform(record: dict, row: int, annotations: Mapping[int, list[dict]] | None, to: str | None, relabels: Mapping[int, str]) -> dict:
    """``annotations`` is None unless annotating; then every record gets the key, findings or not."""
    canonical = record["canonical"]
    original = dict(record["original"])
    if row in relabels:
        original = _with_label(original, canonical, relabels[row])
        canonical = {**canonical, "label": relabels[row], "response": relabels[row],
                     "messages": _with_reply(canonical["messages"], canonical["response"], relabels[row])}
    output = convert(canonical, to) if to else original
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


def _with_reply(messages: list[dict], old: str | None, label: str) -> list[dict]:
    """``messages`` whose last assistant turn says ``label`` where it said ``old`` (what --to writes)."""
    updated = [dict(message) for message in messages]
    for message in reversed(updated):
        if message.get("role") == "assistant":
            if message.get("content") == old:
                message["content"] = label
            break
    return updated


#: Canonical columns a conversion reads.
_CANONICAL = ("messages", "system", "prompt", "response", "label", "tools")
#: Rows named in the message when ``--to`` refuses some.
_REFUSED_SHOWN = 5


def _refuse_unrepresentable(dataset: Dataset, to: str, *, dropped: Mapping[int, Any]) -> None:
    """Refuse, before anything is written, kept rows that ``to`` cannot hold whole."""
    frame = dataset.frame.filter(~pl.col("row").is_in(list(dropped)))
    if to != "alpaca" or frame.is_empty():
        return
    refused = [(line, why) for line, canonical in zip(frame.get_column("line").to_list(), frame.select(_CANONICAL).to_dicts())
               if (why := unrepresentable(canonical, to)) is not None]
    if refused:
        shown = "; ".join(f"line {line}: {why}" for line, why in refused[:_REFUSED_SHOWN])
        more = f" (and {len(refused) - _REFUSED_SHOWN:,} more)" if len(refused) > _REFUSED_SHOWN else ""
        raise UsageError(f"--to {to} cannot hold {len(refused):,} kept row(s) without losing part of them — {shown}{more}. "
                         "Nothing was written: export them --to openai or --to sharegpt, or drop them first.")


def _transformed_lines(dataset: Dataset, transform) -> Callable[[int], bytes]:
    """Output lines for kept records that must change: ``transform(row, record) -> dict``."""
    rows = dataset.frame.get_column("row").to_list()
    raws = dataset.frame.get_column("record").to_list()
    canonical = dataset.frame.select(_CANONICAL).to_dicts()

    def line(index: int) -> bytes:
        record = {"original": json.loads(raws[index].decode("utf-8-sig")), "canonical": canonical[index]}
        return json.dumps(transform(rows[index], record), ensure_ascii=False).encode("utf-8") + b"\n"

    return line


def _annotation_type():
    """Arrow type of :data:`ANNOTATION_KEY` in a table: the JSON annotation's shape, typed as the findings are."""
    import pyarrow as pa

    from dataaudit.checks.base import FINDING_SCHEMA

    arrow = {pl.String: pa.string(), pl.Float64: pa.float64(), pl.Int64: pa.int64()}
    keys = ("check", "kind", "severity", "score", "reason", "suggestion", "suggested_value", "group")
    return pa.struct([("findings", pa.list_(pa.struct([(key, arrow[FINDING_SCHEMA[key]]) for key in keys])))])


def _target_schema(to: str, records: list[dict]):
    """Build the Arrow schema of records converted by :func:`~dataaudit.io.convert.convert`.

    It has the target's columns, with the tool fields only where some record has them. Declared
    tools are JSON Schemas of any shape, so a table keeps them as JSON text.
    """
    import pyarrow as pa

    if to == "alpaca":
        columns = ["instruction", "input", "output", *(["system"] if any("system" in r for r in records) else [])]
        return pa.schema([(name, pa.string()) for name in columns])
    key = "messages" if to == "openai" else "conversations"
    turns = [turn for record in records for turn in record[key]]
    if to == "openai":
        call = pa.struct([("id", pa.string()), ("type", pa.string()),
                          ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
        optional = {"tool_calls": pa.list_(call), "tool_call_id": pa.string(), "name": pa.string()}
        fields = [("role", pa.string()), ("content", pa.string()),
                  *((name, kind) for name, kind in optional.items() if any(name in turn for turn in turns))]
    else:
        fields = [("from", pa.string()), ("value", pa.string())]
    schema = [(key, pa.list_(pa.struct(fields)))]
    if any("tools" in record for record in records):
        schema.append(("tools", pa.string()))
    return pa.schema(schema)


def _table_records(records: list[dict]) -> list[dict]:
    """Converted records with ``tools`` as JSON text (see :func:`_target_schema`)."""
    return [{**record, "tools": json.dumps(record["tools"], ensure_ascii=False) if not isinstance(record["tools"], str)
             else record["tools"]} if "tools" in record else record for record in records]


def _transformed_table(dataset: Dataset, table, *, indexes: list[int], annotations: Mapping[int, list[dict]] | None,
                       to: str | None, relabels: Mapping[int, str]):
    """A Parquet or Arrow file's kept rows (``table``, frame ``indexes``) as annotated, converted or relabelled.

    The table counterpart of :func:`_transformed_lines`, with the same records: ``to`` gives the
    target format's columns; otherwise the file's own columns stay, typed as they were, with the
    relabelled values replaced in place. ``annotations`` adds :data:`ANNOTATION_KEY` as a column.
    """
    import pyarrow as pa

    rows = dataset.frame.get_column("row").gather(indexes).to_list()
    canonical = dataset.frame.select(_CANONICAL)[indexes].to_dicts()
    if to is not None:
        records = [_transform({"original": {}, "canonical": record}, row, None, to, relabels)
                   for row, record in zip(rows, canonical)]
        table = pa.Table.from_pylist(_table_records(records), schema=_target_schema(to, records))
    elif relabels:
        table = _relabelled_table(table, rows, canonical, relabels)
    if annotations is not None:
        column = pa.array([{"findings": annotations.get(row, [])} for row in rows], type=_annotation_type())
        if ANNOTATION_KEY in table.column_names:
            table = table.drop_columns([ANNOTATION_KEY])
        table = table.append_column(ANNOTATION_KEY, column)
    return table


def _relabelled_table(table, rows: list[int], canonical: list[dict], relabels: Mapping[int, str]):
    """``table`` with each relabelled row's label replaced where :func:`_with_label` finds it."""
    import copy

    import pyarrow as pa

    changed: dict[str, list] = {}
    for position, (row, record) in enumerate(zip(rows, canonical)):
        if row not in relabels:
            continue
        original = {name: table.column(name)[position].as_py() for name in table.column_names}
        updated = _with_label(copy.deepcopy(original), record, relabels[row])
        for name in table.column_names:
            if updated[name] != original[name]:
                if name not in changed:
                    changed[name] = table.column(name).to_pylist()
                changed[name][position] = updated[name]
    for name, values in changed.items():
        index = table.column_names.index(name)
        kind = table.schema.field(name).type
        try:
            column = pa.array(values, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            try:  # a label column of numbers: the suggested label is their text
                column = pa.array([None if value is None else str(value) for value in values]).cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise UsageError(f"cannot write the new labels into the column {name!r} of type {kind} ({error})") \
                    from None
        table = table.set_column(index, table.schema.field(name), column)
    return table


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
