"""``load``: any supported input (file, shards, frame, hub name) → :class:`~dataaudit.dataset.Dataset`."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from dataaudit.dataset import BadLine, Dataset, Source
from dataaudit.errors import InputError
from dataaudit.io.formats import FORMATS, NoFormat, RecordError, detect_format, make_adapter, shown_key
from dataaudit.io.options import LoadOptions
from dataaudit.io.readers import EmptyFile, RawRecord, read_records, table_records

if TYPE_CHECKING:
    import polars as pl

logger = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 5
__all__ = ["LoadOptions", "build_dataset", "from_records", "load", "load_with", "messages_series", "records_with"]


def load(
    path: "str | os.PathLike | Any",
    *,
    format: str = "auto",
    prompt_field: str | None = None,
    response_field: str | None = None,
    label_field: str | None = None,
    system_field: str | None = None,
    skip_bad_lines: bool = False,
) -> Dataset:
    """Load a dataset losslessly into the canonical schema.

    ``path`` is a file, a directory of files (shards), a glob (``'shards/*.jsonl.gz'``), a
    ``datasets`` ``save_to_disk`` folder, an ``.arrow`` file, a hub name ``hf:ORG/NAME[:SPLIT]``
    (from the local Hugging Face cache only), or data in memory: a polars or pandas DataFrame,
    a ``datasets.Dataset`` (or a one-split ``DatasetDict``) or a list of dicts. Several files are
    each detected on their own and read in sorted order (see :mod:`dataaudit.io.sources`).
    The keyword arguments are the fields of :class:`LoadOptions` (see :func:`load_with`).

    Bad lines (malformed JSON, invalid UTF-8, records missing what their format needs)
    raise :class:`~dataaudit.errors.InputError` naming file and line, unless
    ``skip_bad_lines`` is set: then they are kept on ``Dataset.bad_lines`` for the
    rejected file and reported in summaries. Nothing is ever dropped silently.
    """
    return load_with(path, LoadOptions(format=format, prompt_field=prompt_field, response_field=response_field,
                                       label_field=label_field, system_field=system_field,
                                       skip_bad_lines=skip_bad_lines))


def load_with(path: "str | os.PathLike | Any", options: LoadOptions) -> Dataset:
    """:func:`load` with its options as one :class:`LoadOptions` value."""
    from dataaudit.io.memory import HUB_PREFIX, is_in_memory, load_hub_table, table_of
    from dataaudit.io.sources import load_sources, resolve_sources

    if is_in_memory(path):
        table = table_of(path)
        if table is None:
            return records_with(path, options)
        return build_dataset(table_records(table), source=None, container="dataframe", options=options)
    source = os.fspath(path)
    if source.startswith(HUB_PREFIX):
        return build_dataset(table_records(load_hub_table(source)), source=source, container="hub", options=options)
    sources = resolve_sources(source)
    if sources is not None:
        return load_sources(source, sources, build=lambda part: _load_part(part, options))
    container, records = read_records(source)
    return build_dataset(records, source=source, container=container, options=options)


def _load_part(source: Source, options: LoadOptions) -> Dataset | None:
    """One file of a sharded input; an empty file (a shard with no rows) is no error here."""
    try:
        container, records = read_records(source.path)
    except EmptyFile:
        return None
    if not records:
        return None
    if all(record.row is None for record in records):  # only blank lines: keep them for the partition
        return build_dataset(records, source=source.path, container=container,
                             options=replace(options, skip_bad_lines=True))
    return build_dataset(records, source=source.path, container=container, options=options)


def from_records(
    records: Sequence[Mapping[str, Any]],
    *,
    format: str = "auto",
    prompt_field: str | None = None,
    response_field: str | None = None,
    label_field: str | None = None,
    system_field: str | None = None,
    skip_bad_lines: bool = False,
) -> Dataset:
    """Build a Dataset from in-memory records (dicts), as if read from a JSONL file.

    A record that cannot be written as JSON text (a non-JSON value, a lone surrogate) is a
    bad line like any other, so it is reported, never lost. The keyword arguments are the
    fields of :class:`LoadOptions`.
    """
    return records_with(records, LoadOptions(format=format, prompt_field=prompt_field, response_field=response_field,
                                             label_field=label_field, system_field=system_field,
                                             skip_bad_lines=skip_bad_lines))


def records_with(records: Sequence[Mapping[str, Any]], options: LoadOptions) -> Dataset:
    """:func:`from_records` with its options as one :class:`LoadOptions` value."""
    raw = [_in_memory_record(index, record) for index, record in enumerate(records)]
    return build_dataset(raw, source=None, container="jsonl", options=options)


def _in_memory_record(index: int, record: Any) -> RawRecord:
    if not isinstance(record, Mapping):
        return RawRecord(index, index + 1, repr(record).encode("utf-8", "backslashreplace"), b"\n", None,
                         f"expected an object, got {type(record).__name__}")
    try:
        raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # before ValueError, its base class
        return RawRecord(index, index + 1, json.dumps(record).encode("ascii"), b"\n", None,
                         "invalid Unicode: a string holds half of a surrogate pair")
    except (TypeError, ValueError, RecursionError) as error:
        return RawRecord(index, index + 1, repr(record).encode("utf-8", "backslashreplace"), b"\n", None,
                         f"not JSON-serialisable ({type(error).__name__}: {str(error)[:120]})")
    return RawRecord(index, index + 1, raw, b"\n", dict(record), None)


def build_dataset(records: list[RawRecord], *, source: str | None, container: str, options: LoadOptions) -> Dataset:
    """Raw records (from any reader, or read in parts and numbered as one file) → Dataset."""
    import polars as pl

    mapping = options.mapping()
    skip_bad_lines = options.skip_bad_lines
    parsed = [record.value for record in records if record.value is not None]
    name = detect_format(parsed, mapping=mapping) if options.format == "auto" else options.format
    if name is None and not (skip_bad_lines and not parsed):
        unparseable = [BadLine(r.row, r.line, r.raw, r.terminator, r.error) for r in records if r.error is not None]
        if unparseable and not parsed:
            raise InputError(_bad_lines_message(unparseable), path=source, line=unparseable[0].line)
        raise InputError(_unknown_format_message(parsed, entries=sum(r.row is not None for r in records)), path=source)
    # Every line unparseable, and the caller asked to continue: an empty dataset whose bad
    # lines all go to the rejected file.
    adapter = make_adapter(name, mapping=mapping) if name is not None else NoFormat()

    columns: dict[str, list] = {key: [] for key in ("row", "line", "messages", "system", "prompt", "response", "label", "tools",
                                                   "record")}
    terminators: list[bytes] = []
    bad: list[BadLine] = []
    blank: list[BadLine] = []
    for record in records:
        if record.row is None:
            blank.append(BadLine(None, record.line, record.raw, record.terminator, "blank line"))
            continue
        reason = record.error
        if reason is None:
            try:
                canonical = adapter.convert(record.value)
            except RecordError as error:
                reason = f"{error} (format {adapter.name}: {adapter.description})"
        if reason is not None:
            bad.append(BadLine(record.row, record.line, record.raw, record.terminator, reason))
            continue
        columns["row"].append(record.row)
        columns["line"].append(record.line)
        columns["messages"].append(canonical.messages)
        columns["system"].append(canonical.system)
        columns["prompt"].append(canonical.prompt)
        columns["response"].append(canonical.response)
        columns["label"].append(canonical.label)
        columns["tools"].append(canonical.tools)
        columns["record"].append(record.raw)
        terminators.append(record.terminator)

    if bad and not skip_bad_lines:
        raise InputError(_bad_lines_message(bad), path=source, line=bad[0].line)
    if bad:
        logger.warning("%s: skipped %d bad lines (first at line %d: %s)", source, len(bad), bad[0].line, bad[0].reason)

    frame = pl.DataFrame(
        {
            "row": pl.Series(columns["row"], dtype=pl.Int64),
            "line": pl.Series(columns["line"], dtype=pl.Int64),
            "messages": messages_series(columns["messages"]),
            "system": pl.Series(columns["system"], dtype=pl.String),
            "prompt": pl.Series(columns["prompt"], dtype=pl.String),
            "response": pl.Series(columns["response"], dtype=pl.String),
            "label": pl.Series(columns["label"], dtype=pl.String),
            "source_format": pl.Series([adapter.name] * len(columns["row"]), dtype=pl.String),
            "record": pl.Series(columns["record"], dtype=pl.Binary),
            "tools": pl.Series(columns["tools"], dtype=pl.String),
        }
    )
    return Dataset(
        frame=frame,
        path=source,
        format=adapter.name,
        container=container,
        bad_lines=tuple(bad),
        blank_lines=tuple(blank),
        terminators=tuple(terminators),
    )


def messages_series(conversations: list[list[dict[str, Any]]]) -> "pl.Series":
    """Build the list-of-struct column from flat columns: ~50x faster than from Python dicts.

    Messages are flattened once into one frame per field, calls into another, then grouped back;
    a message with no calls keeps a null ``tool_calls``, so plain chat data pays one null column.
    """
    import polars as pl

    from dataaudit.io.structure import MESSAGE_FIELDS, TOOL_CALL_FIELDS, messages_dtype, tool_call_dtype

    if not conversations:
        return pl.Series("messages", [], dtype=messages_dtype())
    owners = [index for index, messages in enumerate(conversations) for _ in messages]
    flat_messages = [message for messages in conversations for message in messages]
    scalar = [name for name in MESSAGE_FIELDS if name != "tool_calls"]
    flat = pl.DataFrame({"owner": owners, **{name: [message.get(name) for message in flat_messages] for name in scalar}},
                        schema={"owner": pl.Int64, **{name: pl.String for name in scalar}})
    call_owner = [index for index, message in enumerate(flat_messages) for _ in (message.get("tool_calls") or ())]
    if call_owner:
        call_fields = list(TOOL_CALL_FIELDS)
        calls = [call for message in flat_messages for call in (message.get("tool_calls") or ())]
        call_frame = pl.DataFrame({"message": call_owner, **{name: [call.get(name) for call in calls] for name in call_fields}},
                                  schema={"message": pl.Int64, **{name: pl.String for name in call_fields}})
        grouped_calls = call_frame.group_by("message", maintain_order=True).agg(pl.struct(call_fields).alias("tool_calls"))
        flat = (flat.with_row_index("message").with_columns(pl.col("message").cast(pl.Int64))
                .join(grouped_calls, on="message", how="left", maintain_order="left").drop("message"))
    else:
        flat = flat.with_columns(pl.lit(None, dtype=pl.List(tool_call_dtype())).alias("tool_calls"))
    grouped = flat.group_by("owner", maintain_order=True).agg(pl.struct(list(MESSAGE_FIELDS)).alias("messages"))
    return grouped.get_column("messages").cast(messages_dtype())


def _bad_lines_message(bad: list[BadLine]) -> str:
    first = bad[0]
    lines = [f"{first.reason}"]
    for other in bad[1:MAX_ERRORS_SHOWN]:
        lines.append(f"  also line {other.line}: {other.reason}")
    if len(bad) > MAX_ERRORS_SHOWN:
        lines.append(f"  … and {len(bad) - MAX_ERRORS_SHOWN} more")
    lines.append(f"  {len(bad)} bad line(s) in all; pass --skip-bad-lines to continue without them")
    return "\n".join(lines)


def _unknown_format_message(parsed: list[dict], *, entries: int) -> str:
    if not parsed:
        return "no records in the file" if entries == 0 else "no parseable records"
    keys = sorted({shown_key(key) for record in parsed[:500] for key in record})
    known = "; ".join(f"{name}: {adapter.description}" for name, adapter in FORMATS.items())
    shown = ", ".join(keys[:20]) + (", …" if len(keys) > 20 else "")
    return (
        f"unknown format: records have keys {{{shown}}}. Known formats — {known}. "
        "Name the fields with --prompt-field (and --response-field/--label-field), or pick one with --format."
    )
