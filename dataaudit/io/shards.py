"""The lossless partition, per input file: cleaned shards that mirror the input's layout.

``write_partition_dir`` writes one clean file per input file, under the same relative name
and in the same container (JSONL stays JSONL byte for byte, gzip stays gzip, Parquet and
Arrow keep their schema, a ``save_to_disk`` folder stays loadable with ``load_from_disk``),
and one rejected file for every input. Each input entry lands in exactly one place.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from dataaudit.dataset import Dataset, Source
from dataaudit.errors import UsageError
from dataaudit.io.atomic import atomic_output, atomic_path
from dataaudit.io.writers import (
    PartitionCounts,
    as_one_line,
    check_output_paths,
    input_order,
    rejected_bad_line,
    rejected_entry,
    source_file_of,
)

if TYPE_CHECKING:
    import pyarrow as pa

#: ``(kept rows of one file, *, indexes=their frame indexes) -> the table to write`` (see ``write_partition_dir``).
TableTransform = Callable[..., "pa.Table"]

#: ``datasets`` metadata copied beside cleaned Arrow shards, so the folder still loads.
_HF_METADATA = ("state.json", "dataset_info.json")


def dataset_sources(dataset: Dataset) -> tuple[Source, ...]:
    """The files of ``dataset``: its shards, or its one file."""
    if dataset.sources:
        return dataset.sources
    if dataset.path is None or not Path(dataset.path).is_file():
        raise UsageError("--out-dir mirrors input files, and this data has none (it came from memory or a hub name); "
                         "use --out")
    from dataaudit.io.readers import container_of

    container = dataset.container if dataset.container in ("json", "jsonl") else container_of(Path(dataset.path))
    return (Source(path=dataset.path, name=Path(dataset.path).name, container=container),)


def write_partition_dir(
    dataset: Dataset,
    *,
    out_dir: str | os.PathLike,
    rejected: str | os.PathLike,
    drops: Mapping[int, Sequence[str]] | None = None,
    kept_line: Callable[[int], bytes] | None = None,
    kept_table: TableTransform | None = None,
) -> PartitionCounts:
    """Clean files mirroring the input under ``out_dir``, rejected entries in ``rejected``.

    Records that must change (annotate, convert, relabel) are written by ``kept_line`` for JSON
    and JSONL files, and by ``kept_table`` for Parquet and Arrow files: it gets a file's kept
    rows as a ``pyarrow.Table`` (read again, so their types survive) with their frame indexes,
    and returns the table to write. A CSV file cannot hold such records.
    """
    sources = dataset_sources(dataset)
    out = Path(out_dir)
    targets = [out / source.name for source in sources]
    check_output_paths(dataset, rejected, *targets)
    if kept_line is not None:
        tables = [source for source in sources if source.container not in ("jsonl", "json")]
        if any(source.container == "csv" for source in tables) or (tables and kept_table is None):
            raise UsageError("--annotate, --to and --relabel rewrite records, which a CSV file cannot hold as they "
                             "are; use --out for one JSONL file")
    drops = drops or {}
    frame = dataset.frame
    rows = frame.get_column("row").to_list()
    raws = frame.get_column("record").to_list()
    terminators = dataset.terminators or (b"",) * len(rows)
    kept_by_source: list[list[int]] = [[] for _ in sources]  # frame indexes, in line order
    kept = dropped = 0
    with atomic_output(rejected) as rejected_out:
        for source, line, kind, index in input_order(dataset):
            if kind != "good":
                rejected_out.write(rejected_bad_line(dataset, kind, index))
            elif drops.get(rows[index]):
                rejected_out.write(rejected_entry(row=rows[index], line=line, reasons=drops[rows[index]],
                                                  raw=raws[index], source_file=source_file_of(dataset, source)))
                dropped += 1
            else:
                kept_by_source[source].append(index)
                kept += 1
    lines = frame.get_column("line").to_list()
    for source, target, indexes in zip(sources, targets, kept_by_source):
        if source.container in ("jsonl", "json"):
            line_of = kept_line or (lambda index: as_one_line(raws[index]) + (terminators[index] or b"\n"))
            if source.container == "json" and kept_line is None:
                _write_json_array(target, [raws[index] for index in indexes])
            else:
                _write_lines(target, [line_of(index) for index in indexes], gz=source.name.lower().endswith(".gz"))
        else:
            transform = None if kept_line is None else functools.partial(kept_table, indexes=indexes)
            _write_table(source, target, [lines[index] - 1 for index in indexes], transform=transform)
    _copy_hf_metadata(dataset, out, features_changed=kept_line is not None)
    return PartitionCounts(kept=kept, dropped=dropped, bad=len(dataset.bad_lines), blank=len(dataset.blank_lines))


def _write_lines(target: Path, lines: list[bytes], *, gz: bool) -> None:
    data = b"".join(lines)
    with atomic_output(target) as stream:
        # mtime=0: the same kept lines give the same bytes, run after run.
        stream.write(gzip.compress(data, mtime=0) if gz else data)


def _write_json_array(target: Path, elements: list[bytes]) -> None:
    with atomic_output(target) as stream:
        stream.write(b"[\n" + b",\n".join(elements) + b"\n]\n" if elements else b"[]\n")


def _write_table(source: Source, target: Path, positions: list[int], *, transform=None) -> None:
    """The kept rows of a Parquet, Arrow or CSV file, read again so types and schema survive;
    ``transform`` (tables only) rewrites them first."""
    import pyarrow as pa

    from dataaudit.io.readers import arrow_is_stream, read_arrow_table

    indices = pa.array(positions, type=pa.int64())

    def kept(table):
        table = table.take(indices)
        if transform is None:
            return table
        # The ``datasets`` features stored in the schema describe the old columns: drop them.
        metadata = {key: value for key, value in (table.schema.metadata or {}).items() if key != b"huggingface"}
        return transform(table).replace_schema_metadata(metadata or None)

    with atomic_path(target) as temp:
        if source.container == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(kept(pq.read_table(source.path)), temp)
        elif source.container == "arrow":
            table = kept(read_arrow_table(Path(source.path)))
            opener = pa.ipc.new_stream if arrow_is_stream(Path(source.path)) else pa.ipc.new_file
            with pa.OSFile(str(temp), "wb") as sink, opener(sink, table.schema) as writer:
                writer.write_table(table)
        elif source.container == "csv":
            import polars as pl

            separator = "\t" if source.name.lower().endswith(".tsv") else ","
            table = pl.read_csv(source.path, separator=separator, infer_schema=False, encoding="utf8-lossy")
            table[positions].write_csv(temp, separator=separator)
        else:
            raise UsageError(f"cannot write a {source.container} file: {source.path}")


def _copy_hf_metadata(dataset: Dataset, out: Path, *, features_changed: bool = False) -> None:
    """A ``save_to_disk`` folder's metadata, so ``datasets.load_from_disk(out)`` reads the cleaned shards.

    With ``features_changed`` (records annotated or converted) the stored features and format
    columns no longer describe the shards; they are left out, and ``datasets`` reads the columns
    from the Arrow files themselves.
    """
    if not dataset.sources or dataset.path is None or not Path(dataset.path).is_dir():
        return
    stale = {"dataset_info.json": "features", "state.json": "_format_columns"}
    for name in _HF_METADATA:
        source = Path(dataset.path) / name
        if not source.is_file():
            continue
        with atomic_path(out / name) as temp:
            content = json.loads(source.read_text("utf-8")) if features_changed else None
            if isinstance(content, dict) and content.get(stale[name]) is not None:
                content[stale[name]] = None
                Path(temp).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
            else:
                shutil.copyfile(source, temp)
