"""Descriptive statistics of a loaded dataset: what ``dataaudit inspect`` shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from dataaudit.dataset import Dataset


@dataclass(frozen=True)
class LengthStats:
    """Whitespace-token counts: cheap, model-free, and close enough to spot outliers."""

    mean: float
    p50: float
    p95: float
    max: int
    empty: int


@dataclass(frozen=True)
class DatasetProfile:
    """What ``dataaudit inspect`` shows before an audit: what was read, and how the rows look.

    Token counts are whitespace words: fast, and enough to see the shape of the data.
    """

    path: str | None
    format: str
    container: str
    records: int
    bad_lines: int
    blank_lines: int
    prompt_tokens: LengthStats
    response_tokens: LengthStats | None
    turns: dict[int, int]
    with_system: int
    labels: dict[str, int] = field(default_factory=dict)
    distinct_labels: int = 0
    first_bad_lines: list[dict] = field(default_factory=list)
    #: Tool calls, tool results, declared tools and reasoning (see :func:`~dataaudit.io.structure.structure_counts`).
    structure: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the profile as plain dicts and lists, for JSON."""
        return asdict(self)


def _length_stats(texts: list[str | None]) -> LengthStats:
    import numpy as np

    counts = np.array([len(text.split()) if text else 0 for text in texts], dtype=np.int64)
    if counts.size == 0:
        return LengthStats(0.0, 0.0, 0.0, 0, 0)
    return LengthStats(
        mean=round(float(counts.mean()), 2),
        p50=float(np.percentile(counts, 50)),
        p95=float(np.percentile(counts, 95)),
        max=int(counts.max()),
        empty=int(sum(1 for text in texts if not text or not text.strip())),
    )


def profile_dataset(dataset: Dataset, *, top_labels: int = 20) -> DatasetProfile:
    """Profile ``dataset`` without embedding anything: sizes, turns, lengths and the ``top_labels`` labels."""
    import polars as pl

    from dataaudit.io.structure import structure_counts

    frame = dataset.frame
    turn_counts = frame.select(
        pl.col("messages").list.eval(pl.element().struct.field("role") == "user").list.sum().alias("turns")
    ).get_column("turns")
    turns = {int(k): int(v) for k, v in sorted(turn_counts.value_counts().iter_rows())} if frame.height else {}
    labels: dict[str, int] = {}
    distinct = 0
    if dataset.has_labels:
        counts = frame.get_column("label").drop_nulls().value_counts(sort=True)
        distinct = counts.height
        labels = {str(label): int(count) for label, count in counts.head(top_labels).iter_rows()}
    responses = frame.get_column("response").to_list()
    return DatasetProfile(
        path=dataset.path,
        format=dataset.format,
        container=dataset.container,
        records=len(dataset),
        bad_lines=len(dataset.bad_lines),
        blank_lines=len(dataset.blank_lines),
        prompt_tokens=_length_stats(frame.get_column("prompt").to_list()),
        response_tokens=_length_stats(responses) if dataset.has_responses else None,
        turns=turns,
        with_system=int(frame.get_column("system").drop_nulls().len()),
        labels=labels,
        distinct_labels=distinct,
        first_bad_lines=[{"line": bad.line, "reason": bad.reason} for bad in dataset.bad_lines[:5]],
        structure=structure_counts(frame),
    )
