"""Readers: turn a file into raw records, one per input line or element, losing nothing.

Each :class:`RawRecord` keeps the exact bytes it came from, so a kept record can be written
back unchanged and a bad one can be reported with its file and line. Parsing problems are
recorded on the record, never raised here: the loader decides whether they are fatal.

Hostile input is a bad record, never a crash: invalid UTF-8, NUL bytes outside strings,
nesting deeper than Python's recursion limit, integers over Python's 4,300-digit limit,
and ``\\uD800``-style escapes of half a surrogate pair (text no UTF-8 file can hold).
Duplicate keys follow Python's ``json`` (and most readers): the last value wins, while the
record's bytes, written back by export, keep both. NaN and Infinity literals are accepted
as JSON extensions. A JSON array file is decoded as one document, so an error in it is
fatal (file and line named) rather than a skippable line. CSV is decoded leniently
(invalid UTF-8 becomes U+FFFD), like spreadsheet exports usually need.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from dataaudit.errors import InputError

if TYPE_CHECKING:
    import polars as pl

_BOM = b"\xef\xbb\xbf"


class EmptyFile(InputError):
    """A file with no content at all: an error for one file, an empty shard among several."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One input line (JSONL) or element (JSON array, Parquet/CSV row).

    ``row`` is the record's 0-based position among non-blank entries (bad ones included),
    ``None`` for blank lines. ``raw`` holds the original bytes without the line terminator;
    ``terminator`` the bytes that ended the line (``b""`` for the last line or non-JSONL).
    """

    row: int | None
    line: int
    raw: bytes
    terminator: bytes
    value: dict[str, Any] | None
    error: str | None


def _open_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def _split_lines(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (content, terminator) per line; CRLF and LF endings are both preserved."""
    start = 0
    size = len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end == -1:
            content, terminator, start = data[start:], b"", size
        else:
            content, terminator, start = data[start:end], b"\n", end + 1
            if content.endswith(b"\r"):
                content, terminator = content[:-1], b"\r\n"
        yield content, terminator


_TOO_DEEP = "malformed JSON (nested too deeply)"
_HALF_SURROGATE = "invalid Unicode: a \\u escape encodes half of a surrogate pair"


def _describe_json_error(error: json.JSONDecodeError) -> str:
    # Some of json's messages end in "at" already ("Unterminated string starting at").
    return f"malformed JSON ({error.msg.removesuffix(' at')} at column {error.colno})"


def _describe_value_error(error: ValueError) -> str:
    """JSON that parses but cannot become Python values (e.g. a 5,000-digit integer)."""
    message = str(error).split(";")[0]
    return f"malformed JSON ({message[:120]})"


def _parse_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return None, _describe_json_error(error)
    except RecursionError:
        return None, _TOO_DEEP
    except ValueError as error:
        return None, _describe_value_error(error)
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    if _may_hold_surrogates(text) and _holds_surrogates(value):
        return None, _HALF_SURROGATE
    return value, None


def _may_hold_surrogates(text: str) -> bool:
    """Cheap pre-check: half surrogates can only come from ``\\uD800``-``\\uDFFF`` escapes."""
    return "\\ud" in text or "\\uD" in text


def _holds_surrogates(value: Any) -> bool:
    """Whether any key or string in ``value`` has a lone surrogate (iterative: any depth)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            strings = (item,)
        elif isinstance(item, dict):
            strings = tuple(key for key in item if isinstance(key, str))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
            continue
        else:
            continue
        for string in strings:
            try:
                string.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def read_jsonl(data: bytes) -> list[RawRecord]:
    records: list[RawRecord] = []
    row = 0
    for line_no, (content, terminator) in enumerate(_split_lines(data), start=1):
        # A BOM may start any line, not just the first: files concatenated with `cat` keep theirs.
        parse_bytes = content[len(_BOM):] if content.startswith(_BOM) else content
        if not parse_bytes.strip():
            records.append(RawRecord(None, line_no, content, terminator, None, None))
            continue
        try:
            text = parse_bytes.decode("utf-8")
        except UnicodeDecodeError as error:
            message = f"invalid UTF-8 (byte {error.start + 1} of the line)"
            records.append(RawRecord(row, line_no, content, terminator, None, message))
        else:
            value, message = _parse_object(text)
            if message is not None and "Extra data" in message and b"\r" in content:
                message += "; lines seem to end in a bare CR: use LF or CRLF line endings"
            records.append(RawRecord(row, line_no, content, terminator, value, message))
        row += 1
    return records


def read_json_array(data: bytes, *, path: str) -> list[RawRecord]:
    """Elements of a top-level JSON array, each with its exact source text and line.

    A wrapper object holding a single list of records (``{"data": [...]}``) is accepted too.
    """
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError("invalid UTF-8", path=path, line=line) from None
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if text.startswith("{", position):
        return _read_wrapped_array(text, path=path)
    if not text.startswith("[", position):
        raise InputError("expected a JSON array of records", path=path, line=1)
    records: list[RawRecord] = []
    position = _skip_space(text, position + 1)
    line = 1 + text.count("\n", 0, position)
    counted_to = position
    if text.startswith("]", position):
        return records
    while True:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise InputError(_describe_json_error(error), path=path, line=error.lineno) from None
        except RecursionError:
            raise InputError(_TOO_DEEP, path=path, line=1 + text.count("\n", 0, position)) from None
        except ValueError as error:
            raise InputError(_describe_value_error(error), path=path, line=1 + text.count("\n", 0, position)) from None
        line += text.count("\n", counted_to, position)
        counted_to = position
        element = text[position:end]
        error_message = None if isinstance(value, dict) else f"expected a JSON object, got {type(value).__name__}"
        if error_message is None and _may_hold_surrogates(element) and _holds_surrogates(value):
            error_message = _HALF_SURROGATE
        records.append(RawRecord(len(records), line, element.encode("utf-8"), b"", value if error_message is None else None, error_message))
        position = _skip_space(text, end)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
            continue
        if text.startswith("]", position):
            break
        line_no = 1 + text.count("\n", 0, position)
        raise InputError("malformed JSON array (expected ',' or ']')", path=path, line=line_no)
    after = _skip_space(text, position + 1)
    if after < len(text):
        # Silently ignoring it could hide records: a second array, or a file cut and pasted twice.
        raise InputError("unexpected text after the JSON array", path=path, line=1 + text.count("\n", 0, after))
    return records


def _read_wrapped_array(text: str, *, path: str) -> list[RawRecord]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(_describe_json_error(error), path=path, line=error.lineno) from None
    except RecursionError:
        raise InputError(_TOO_DEEP, path=path, line=1) from None
    except ValueError as error:
        raise InputError(_describe_value_error(error), path=path, line=1) from None
    lists = [item for item in value.values() if isinstance(item, list)]
    if len(lists) != 1:
        if any(isinstance(item, str) for item in value.values()):
            # A single record in a .json file: treat it as a one-record dataset.
            lists = [[value]]
        else:
            raise InputError("expected a JSON array of records, or an object holding one", path=path, line=1)
    return _records_from_values(lists[0])


def _records_from_values(values: list[Any]) -> list[RawRecord]:
    records = []
    for index, value in enumerate(values):
        error = None if isinstance(value, dict) else f"expected a JSON object, got {type(value).__name__}"
        if error is None and _holds_surrogates(value):
            error = _HALF_SURROGATE
        try:
            raw = json.dumps(value, ensure_ascii=error is not None).encode("utf-8")
        except RecursionError:
            raw, error = b"", _TOO_DEEP
        records.append(RawRecord(index, index + 1, raw, b"", value if error is None else None, error))
    return records


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def read_table(path: Path, *, kind: str) -> list[RawRecord]:
    """Parquet, Arrow or CSV rows as records; ``line`` is the data row number (header excluded)."""
    import polars as pl

    try:
        if kind == "parquet":
            frame = pl.read_parquet(path)
        elif kind == "arrow":
            frame = pl.from_arrow(read_arrow_table(path))
        else:
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            frame = pl.read_csv(path, separator=separator, infer_schema=False, encoding="utf8-lossy")
    except Exception as error:  # polars raises many distinct types for unreadable files
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise InputError(f"cannot read {kind} file ({first_line})", path=str(path)) from None
    return table_records(frame)


def read_arrow_table(path: Path):
    """An Arrow IPC file as a ``pyarrow.Table``: the streaming layout ``datasets`` writes, or the file layout."""
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


def arrow_is_stream(path: Path) -> bool:
    """Whether an Arrow file uses the streaming layout (files start with the ``ARROW1`` magic)."""
    with open(path, "rb") as handle:
        return handle.read(6) != b"ARROW1"


def table_records(frame: pl.DataFrame) -> list[RawRecord]:
    """Rows of a table as records, numbered from 0; each record's text is its row as JSON."""
    return [
        RawRecord(index, index + 1, json.dumps(row, ensure_ascii=False, default=str).encode("utf-8"), b"", row, None)
        for index, row in enumerate(frame.to_dicts())
    ]


def container_of(path: Path) -> str:
    """The container kind by extension; JSON vs JSONL is decided by content."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".arrow"):
        return "arrow"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    return "json-or-jsonl"


def read_records(path: str | os.PathLike) -> tuple[str, list[RawRecord]]:
    """Read ``path`` into raw records. Returns (container, records)."""
    file = Path(path)
    if not file.exists():
        raise InputError("no such file", path=str(file))
    if file.is_dir():
        raise InputError("is a directory, expected a data file", path=str(file))
    container = container_of(file)
    if container in ("parquet", "csv", "arrow"):
        return container, read_table(file, kind=container)
    try:
        data = _open_bytes(file)
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(f"cannot read file ({error})", path=str(file)) from None
    if not data.removeprefix(_BOM).strip():
        raise EmptyFile("file is empty", path=str(file))
    if container == "jsonl":
        return container, read_jsonl(data)
    first = data[len(_BOM):] if data.startswith(_BOM) else data
    if first.lstrip()[:1] == b"[":
        return "json", read_json_array(data, path=str(file))
    records = read_jsonl(data)
    if _looks_like_one_json_document(records, data):
        return "json", read_json_array(data, path=str(file))
    return "jsonl", records


def _looks_like_one_json_document(records: list[RawRecord], data: bytes) -> bool:
    """A pretty-printed object spread over lines: its first line alone is not valid JSON."""
    content = [record for record in records if record.row is not None]
    if len(content) == 1 and content[0].value is not None:
        values = list(content[0].value.values())
        lists = [v for v in values if isinstance(v, list) and v and all(isinstance(item, dict) for item in v)]
        return len(lists) == 1 and not any(isinstance(v, str) for v in values)
    if len(content) < 2 or content[0].error is None or not content[0].raw.strip().startswith((b"{", _BOM + b"{")):
        return False
    try:
        json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, or a number Python refuses
        return False
    return True
