"""The canonical dataset: one polars frame, whatever format the data came in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

#: Columns of :attr:`Dataset.frame`, in order.
CANONICAL_COLUMNS = ("row", "line", "messages", "system", "prompt", "response", "label", "source_format", "record",
                     "tools")


@dataclass(frozen=True, slots=True)
class BadLine:
    """An input line that produced no record: unparseable, missing fields, or blank.

    ``row`` is ``None`` for blank lines (they are not records). ``raw`` holds the exact bytes
    and ``terminator`` the line ending, so the line can be written back unchanged.
    """

    row: int | None
    line: int
    raw: bytes
    terminator: bytes
    reason: str
    #: Index into :attr:`Dataset.sources` of the file the line came from (0 for one file).
    source: int = 0


@dataclass(frozen=True, slots=True)
class Source:
    """One input file of a dataset read from several (a directory, a glob, shards).

    ``name`` is the file's path relative to the input root, so an export can mirror the
    input's layout; ``container`` is how the file is stored (``jsonl``, ``parquet``, ``arrow`` …).
    """

    path: str
    name: str
    container: str


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset.

    ``frame`` has one row per good record with the columns in :data:`CANONICAL_COLUMNS`:
    ``row`` (0-based position among non-blank input entries, bad ones counted, so it always
    maps back to one input line), ``line`` (1-based input line, or element number for JSON
    arrays and tables), ``messages`` (every turn as ``{role, content, tool_calls,
    tool_call_id, name, reasoning}``, see :mod:`dataaudit.io.structure`), ``system``,
    ``prompt`` (user side of the last turn, including input/context), ``response`` (last
    assistant message: its answer plus its tool calls, ``None`` for prompt-only data),
    ``label`` (``None`` unless classification-style), ``source_format``, ``record`` (the
    original bytes, without the line terminator) and ``tools`` (the declared tools as one JSON
    text, ``None`` for rows that declare none). ``terminators`` holds each good record's line ending, aligned with
    ``frame`` rows.

    A dataset read from several files (a directory, a glob, shards) lists them in
    ``sources``, in reading order, and its frame has one more column, ``source`` (index into
    ``sources``); ``row`` counts across all files, ``line`` within each. ``path`` is then the
    input as given (the directory or the glob). A single file keeps ``sources`` empty and the
    frame exactly :data:`CANONICAL_COLUMNS`, so its on-disk results do not change.
    """

    frame: "pl.DataFrame"
    path: str | None
    format: str
    container: str
    bad_lines: tuple[BadLine, ...] = ()
    blank_lines: tuple[BadLine, ...] = ()
    terminators: tuple[bytes, ...] = field(default=(), repr=False)
    sources: tuple[Source, ...] = ()

    def __len__(self) -> int:
        """The number of rows: records read, bad lines not counted (see :attr:`n_entries`)."""
        return self.frame.height

    @property
    def n_entries(self) -> int:
        """Every non-blank input entry, good or bad."""
        return self.frame.height + len(self.bad_lines)

    @property
    def prompts(self) -> list[str]:
        """Each row's prompt (the user side of the last turn), as a list."""
        return self.frame.get_column("prompt").to_list()

    @property
    def responses(self) -> list[str]:
        """Responses, with ``None`` (prompt-only rows) as the empty string."""
        return [response or "" for response in self.frame.get_column("response").to_list()]

    @property
    def has_responses(self) -> bool:
        """Whether any row has a response: prompt-only data has none, and the checks that judge responses skip."""
        return self.frame.height > 0 and self.frame.get_column("response").null_count() < self.frame.height

    @property
    def has_labels(self) -> bool:
        """Whether any row has a label (classification data)."""
        return self.frame.height > 0 and self.frame.get_column("label").null_count() < self.frame.height

    def fingerprint(self) -> str:
        """Hash of row ids and record bytes: lets an export refuse an audit of other data."""
        import hashlib

        digest = hashlib.blake2b(digest_size=16)
        rows = self.frame.get_column("row").to_list()
        for row, record in zip(rows, self.frame.get_column("record").to_list()):
            digest.update(row.to_bytes(8, "little", signed=True))
            digest.update(len(record).to_bytes(8, "little"))
            digest.update(record)
        return digest.hexdigest()

    @property
    def is_sharded(self) -> bool:
        """Whether rows come from several files (then rows carry ``source_file``)."""
        return bool(self.sources)

    def source_files(self) -> "pl.Series":
        """Each row's input file (its ``Source.path``; ``path`` for one file), aligned with ``frame``."""
        import polars as pl

        if not self.sources:
            return pl.Series("source_file", [self.path] * self.frame.height, dtype=pl.String)
        paths = pl.Series("paths", [source.path for source in self.sources], dtype=pl.String)
        return paths.gather(self.frame.get_column("source")).alias("source_file")

    def content_hashes(self) -> "pl.Series":
        """A stable hash of each row's prompt, response and label (see :func:`content_hash_frame`).

        Matches rows across versions of a dataset (see :mod:`dataaudit.baseline`): it ignores
        the row's position, file and storage, so reordered or re-sharded data keeps its hashes.
        """
        return content_hash_frame(self.frame)

    def head(self, n: int = 5) -> "pl.DataFrame":
        """Return the first ``n`` rows of the normalised frame, for a quick look."""
        return self.frame.head(n)

    def _repr_html_(self) -> str:
        from html import escape

        summary = (
            f"<p><b>dataaudit.Dataset</b> — {escape(str(self.path))}: {len(self)} records, "
            f"format {escape(self.format)}, {len(self.bad_lines)} bad lines</p>"
        )
        return summary + self.frame.drop("record").head(10)._repr_html_()


def content_hash_frame(frame: "pl.DataFrame") -> "pl.Series":
    """A stable hash per row of its prompt, response and label (the text a finding is about).

    Written from the columns every saved ``rows.parquet`` has, so any earlier audit can be a
    baseline. Hashed with BLAKE2b over a JSON list (not polars' hash, which may change between
    versions): the same content gives the same hash on every machine and release. The other
    turns, the system prompt and the source are not hashed.
    """
    import hashlib
    import json

    import polars as pl

    columns = [frame.get_column(name).to_list() if name in frame.columns else [None] * frame.height
               for name in ("prompt", "response", "label")]
    hashes = [hashlib.blake2b(json.dumps(values, ensure_ascii=False).encode("utf-8"), digest_size=12).hexdigest()
              for values in zip(*columns)]
    return pl.Series("content_hash", hashes, dtype=pl.String)
