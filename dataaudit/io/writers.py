"""The lossless partition writer behind ``dataaudit export``.

Every input line lands in exactly one of two files: ``clean`` (kept records, byte-for-byte
as in the input, in input order) or ``rejected`` (one JSON object per dropped, unparseable
or blank line, with its reasons and original text).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from dataaudit.dataset import Dataset
from dataaudit.errors import UsageError
from dataaudit.io.atomic import atomic_output


@dataclass(frozen=True)
class PartitionCounts:
    """How many lines each side of a partition got: every input line is counted exactly once."""

    kept: int
    dropped: int
    bad: int
    blank: int

    @property
    def rejected(self) -> int:
        """Lines in the rejected file: dropped rows, unparseable lines and blank lines."""
        return self.dropped + self.bad + self.blank


def rejected_entry(*, row: int | None, line: int, reasons: Sequence[str], raw: bytes,
                   source_file: str | None = None) -> bytes:
    """One rejected.jsonl line. Text that is not valid UTF-8 is kept as base64 instead.

    ``source_file`` names the input file for data read from several files (shards).
    """
    entry: dict = {"row": row, "line": line, "reasons": list(reasons)}
    if source_file is not None:
        entry["source_file"] = source_file
    try:
        entry["record"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["record_base64"] = base64.b64encode(raw).decode("ascii")
    return json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n"


def as_one_line(raw: bytes) -> bytes:
    """A pretty-printed JSON-array element, compacted so the output stays valid JSONL."""
    if b"\n" not in raw:
        return raw
    return json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")


def same_file(left: str | os.PathLike, right: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal once resolved, or links to the same inode."""
    if Path(left).resolve() == Path(right).resolve():
        return True
    try:
        return os.path.samefile(left, right)
    except OSError:  # either does not exist (yet): then they are not one file
        return False


def check_output_paths(dataset: Dataset, *paths: str | os.PathLike | None) -> None:
    """Refuse to write over the input file, or two outputs to one file.

    The second output would replace the first: a cleanup tool must never destroy its source or
    its own results.
    """
    chosen = [path for path in paths if path is not None]
    inputs = [source.path for source in dataset.sources] or ([dataset.path] if dataset.path is not None else [])
    for source in inputs:
        for path in chosen:
            if same_file(path, source):
                raise UsageError(f"refusing to overwrite the input file {source}; choose another output path")
    for index, path in enumerate(chosen):
        for other in chosen[index + 1 :]:
            if same_file(path, other):
                raise UsageError(f"two outputs would be written to one file ({path} and {other}); choose distinct paths")


def write_partition(
    dataset: Dataset,
    *,
    clean: str | os.PathLike,
    rejected: str | os.PathLike,
    drops: Mapping[int, Sequence[str]] | None = None,
    kept_line: Callable[[int], bytes] | None = None,
) -> PartitionCounts:
    r"""Write kept and rejected lines. ``drops`` maps ``row`` → reasons to drop it.

    JSONL input is written back byte-for-byte (original line endings kept; a final line
    without one gets ``\n``). Other containers are written as JSONL of each record's JSON.
    ``kept_line`` (frame index → the whole output line) replaces that for callers that must
    change kept records (annotate, convert, relabel); the partition itself is the same.
    """
    check_output_paths(dataset, clean, rejected)
    drops = drops or {}
    frame = dataset.frame
    rows = frame.get_column("row").to_list()
    raws = frame.get_column("record").to_list()
    terminators = dataset.terminators or (b"",) * len(rows)
    original_line = kept_line or (lambda index: as_one_line(raws[index]) + (terminators[index] or b"\n"))

    kept = dropped = 0
    with atomic_output(clean) as clean_out, atomic_output(rejected) as rejected_out:
        for source, line, kind, index in input_order(dataset):
            if kind == "good":
                row = rows[index]
                reasons = drops.get(row)
                if reasons:
                    rejected_out.write(rejected_entry(row=row, line=line, reasons=reasons, raw=raws[index],
                                                      source_file=source_file_of(dataset, source)))
                    dropped += 1
                else:
                    clean_out.write(original_line(index))
                    kept += 1
            else:
                rejected_out.write(rejected_bad_line(dataset, kind, index))
    return PartitionCounts(kept=kept, dropped=dropped, bad=len(dataset.bad_lines), blank=len(dataset.blank_lines))


def input_order(dataset: Dataset) -> list[tuple[int, int, str, int]]:
    """Every input entry as (source, line, kind, index), in file then line order.

    ``kind`` is "good" (``index`` into the frame), "bad" or "blank" (into those tuples).
    """
    lines = dataset.frame.get_column("line").to_list()
    if dataset.sources:
        sources = dataset.frame.get_column("source").to_list()
    else:
        sources = [0] * len(lines)
    entries = [(source, line, "good", index) for index, (source, line) in enumerate(zip(sources, lines))]
    entries += [(bad.source, bad.line, "bad", index) for index, bad in enumerate(dataset.bad_lines)]
    entries += [(blank.source, blank.line, "blank", index) for index, blank in enumerate(dataset.blank_lines)]
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return entries


def source_file_of(dataset: Dataset, source: int) -> str | None:
    """The path of the dataset's ``source``-th input file; None where it has no source files."""
    return dataset.sources[source].path if dataset.sources else None


def rejected_bad_line(dataset: Dataset, kind: str, index: int) -> bytes:
    """The rejected-file entry of an unparseable (``kind="bad"``) or blank line, with its reason."""
    entry = dataset.bad_lines[index] if kind == "bad" else dataset.blank_lines[index]
    return rejected_entry(row=entry.row, line=entry.line, reasons=[entry.reason], raw=entry.raw,
                          source_file=source_file_of(dataset, entry.source))
