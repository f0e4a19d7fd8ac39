"""Inputs made of several files: a directory, a glob, shards, a ``save_to_disk`` folder.

Datasets rarely come as one file: the hub ships ``train-00000-of-00004.parquet`` shards,
``datasets`` saves Arrow files beside a ``state.json``, teams split JSONL by date. Each file is
read by the single-file reader and detected on its own (as ``--format auto`` promises), then
the parts are joined into one :class:`~dataaudit.dataset.Dataset` whose rows keep their file
(``source``) and their line within it, so an export can write each file back where it was.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from dataaudit.dataset import BadLine, Dataset, Source
from dataaudit.errors import InputError
from dataaudit.runtime import available_cores

logger = logging.getLogger(__name__)

#: File endings read from a directory; anything else (README.md, .gitattributes) is skipped.
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".parquet", ".csv", ".tsv",
                 ".arrow")
#: Metadata ``datasets.save_to_disk`` writes beside the data; never records.
_HF_METADATA = frozenset({"state.json", "dataset_info.json", "dataset_dict.json"})
_GLOB_CHARS = ("*", "?", "[")
#: Shards read at once: reading Parquet and gzip releases the GIL, so a few threads help.
MAX_READ_THREADS = 4


def is_glob(spec: str) -> bool:
    return any(char in spec for char in _GLOB_CHARS) and not Path(spec).exists()


def resolve_sources(spec: str) -> list[Source] | None:
    """The files behind ``spec``, in reading order; ``None`` when ``spec`` is one file (or missing).

    A directory is searched recursively for data files (hidden ones skipped), sorted by their
    path relative to it; a glob's matches are sorted the same way; a ``save_to_disk`` folder
    lists its Arrow files in the order its ``state.json`` gives.
    """
    path = Path(spec)
    if is_glob(spec):
        matches = sorted(Path(match) for match in glob.glob(spec, recursive=True) if Path(match).is_file())
        if not matches:
            raise InputError("no files match this pattern", path=spec)
        root = Path(os.path.commonpath([str(match.parent) for match in matches]))
        return [_source(match, root) for match in sorted(matches, key=lambda match: match.relative_to(root).as_posix())]
    if not path.is_dir():
        return None
    if (path / "dataset_dict.json").is_file():
        splits = _dataset_dict_splits(path)
        raise InputError(f"a DatasetDict folder with splits {', '.join(splits)}: pass one split's folder, "
                         f"e.g. {path / splits[0]}" if splits else "a DatasetDict folder without splits", path=spec)
    if (path / "state.json").is_file():
        return _save_to_disk_sources(path)
    files = [
        file for file in path.rglob("*")
        if file.is_file() and file.name.lower().endswith(DATA_SUFFIXES) and file.name not in _HF_METADATA
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    ]
    if not files:
        raise InputError(f"no data files in this directory (looked for {', '.join(DATA_SUFFIXES)})", path=spec)
    return [_source(file, path) for file in sorted(files, key=lambda file: file.relative_to(path).as_posix())]


def _source(file: Path, root: Path) -> Source:
    from dataaudit.io.readers import container_of

    return Source(path=str(file), name=file.relative_to(root).as_posix(), container=container_of(file))


def _dataset_dict_splits(folder: Path) -> list[str]:
    try:
        return [str(split) for split in json.loads((folder / "dataset_dict.json").read_text("utf-8")).get("splits", [])]
    except (OSError, ValueError, AttributeError):
        return sorted(entry.name for entry in folder.iterdir() if (entry / "state.json").is_file())


def _save_to_disk_sources(folder: Path) -> list[Source]:
    try:
        state = json.loads((folder / "state.json").read_text("utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot read the save_to_disk state ({type(error).__name__}: {error})",
                         path=str(folder / "state.json")) from None
    if not names:
        raise InputError("a save_to_disk folder without data files", path=str(folder))
    return [Source(path=str(folder / name), name=name, container="arrow") for name in names]


def load_sources(spec: str, sources: list[Source], *, build: Callable[[Source], Dataset | None]) -> Dataset:
    """Read each source with ``build`` (None for a file without entries) and join the parts.

    Files are read a few at a time; the order of the result is always the order of ``sources``,
    and the first failing file (in that order) is the error reported.
    """
    workers = max(1, min(MAX_READ_THREADS, available_cores(), len(sources)))
    if workers == 1:
        parts = [build(source) for source in sources]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(build, sources))
    return join_parts(spec, sources, parts)


def join_parts(spec: str, sources: list[Source], parts: list[Dataset | None]) -> Dataset:
    """One dataset from per-file ones: ``row`` renumbered across files, ``source`` added."""
    import polars as pl

    frames, terminators, bad, blank = [], [], [], []
    offset = 0
    for index, part in enumerate(parts):
        if part is None:
            continue
        frames.append(part.frame.with_columns(pl.col("row") + offset, pl.lit(index, dtype=pl.Int32).alias("source")))
        terminators.extend(part.terminators or (b"",) * part.frame.height)
        bad.extend(_moved(line, offset, index) for line in part.bad_lines)
        blank.extend(_moved(line, offset, index) for line in part.blank_lines)
        offset += part.n_entries
    present = [part for part in parts if part is not None]
    if not present:
        raise InputError("no records in any of the files", path=spec)
    formats = sorted({part.format for part in present if part.frame.height} or {present[0].format})
    containers = sorted({source.container for source in sources})
    return Dataset(
        frame=pl.concat(frames, how="vertical"),
        path=spec,
        format=formats[0] if len(formats) == 1 else "mixed",
        container=containers[0] if len(containers) == 1 else "mixed",
        bad_lines=tuple(bad),
        blank_lines=tuple(blank),
        terminators=tuple(terminators),
        sources=tuple(sources),
    )


def _moved(line: BadLine, offset: int, source: int) -> BadLine:
    return BadLine(None if line.row is None else line.row + offset, line.line, line.raw, line.terminator, line.reason,
                   source)
