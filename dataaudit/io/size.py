"""How many rows and text bytes an input holds, without reading its records.

The memory check (:func:`dataaudit.resources.check_input_memory`) runs on these numbers before
the load, so an audit that cannot fit fails in seconds instead of after minutes of parsing
(and before the parse itself takes the memory). Parquet and Arrow files say their row count in
their metadata; JSON Lines are counted by their newlines in a streaming pass (gzip included).
Formats whose rows cannot be counted without parsing (a JSON array, CSV) return None.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 16 << 20


@dataclass(frozen=True)
class InputSize:
    """Rows (an upper bound: blank lines count) and uncompressed bytes of an input."""

    rows: int
    text_bytes: int


def input_size(spec: str) -> InputSize | None:
    """The size of the file, folder or glob ``spec``; None when any of its files cannot be counted cheaply."""
    from dataaudit.io.readers import container_of
    from dataaudit.io.sources import resolve_sources

    sources = resolve_sources(str(spec))
    files = [Path(source.path) for source in sources] if sources is not None else [Path(spec)]
    if sources is None and not Path(spec).is_file():
        return None
    total_rows = total_bytes = 0
    for file in files:
        counted = _file_size(file, container_of(file))
        if counted is None:
            return None
        total_rows, total_bytes = total_rows + counted.rows, total_bytes + counted.text_bytes
    return InputSize(rows=total_rows, text_bytes=total_bytes)


def _file_size(file: Path, container: str) -> InputSize | None:
    try:
        if container == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(file).metadata
            uncompressed = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
            return InputSize(rows=metadata.num_rows, text_bytes=uncompressed)
        if container == "arrow":
            return _arrow_size(file)
        if container == "jsonl":
            return _line_count(file)
    except (OSError, ValueError, EOFError):  # unreadable here: the loader gives the clear error
        return None
    return None


def _line_count(file: Path) -> InputSize:
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    lines = size = 0
    last = b"\n"
    with opener(file, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    return InputSize(rows=lines + (last != b"\n"), text_bytes=size)


def _arrow_size(file: Path) -> InputSize:
    """An Arrow IPC file or stream (``save_to_disk`` writes streams), memory-mapped: no data is read."""
    import pyarrow as pa

    with pa.memory_map(str(file)) as source:
        try:
            reader = pa.ipc.open_file(source)
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        except pa.ArrowInvalid:
            source.seek(0)
            batches = list(pa.ipc.open_stream(source))
        return InputSize(rows=sum(batch.num_rows for batch in batches), text_bytes=sum(batch.nbytes for batch in batches))

