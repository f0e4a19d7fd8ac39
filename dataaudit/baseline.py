"""Compare an audit with an earlier one: which findings are new, unchanged, resolved.

A team that keeps a dataset under version control decides once which flagged rows to keep;
from then on the gate (``--baseline OLD_AUDIT --fail-on warning``) should fail on *new*
problems only. Rows are matched by a hash of their content, not their position, so
reordering, re-sharding or appending rows keeps the match; a finding is the same when its
row's content, its check and its kind are the same. Data in, data out: no files are read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from dataaudit.dataset import content_hash_frame

if TYPE_CHECKING:
    from dataaudit.result import AuditResult

#: The ``baseline`` column of compared findings.
NEW, UNCHANGED = "new", "unchanged"
_KEY = ["content_hash", "check", "kind"]
__all__ = ["NEW", "UNCHANGED", "BaselineComparison", "compare", "content_hash_frame"]


@dataclass(frozen=True)
class BaselineComparison:
    """``findings``: the new audit's findings with ``content_hash`` and ``baseline`` ("new" or
    "unchanged"); ``resolved``: the baseline's findings that are gone."""

    findings: pl.DataFrame
    resolved: pl.DataFrame
    path: str | None = None

    @property
    def new(self) -> pl.DataFrame:
        return self.findings.filter(pl.col("baseline") == NEW)

    @property
    def new_rows(self) -> list[int]:
        return sorted(set(self.new.get_column("row").to_list()))

    def summary(self) -> dict[str, Any]:
        """The ``baseline`` section of ``summary.json``."""
        return {
            "path": self.path,
            "new": self.new.height,
            "unchanged": self.findings.height - self.new.height,
            "resolved": self.resolved.height,
            "new_rows": self.new_rows,
        }


def _keyed(findings: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Findings with their row's content hash and their rank among findings of the same key."""
    hashes = rows.select("row").with_columns(content_hash_frame(rows))
    return (
        findings.join(hashes, on="row", how="left")
        .with_columns(pl.col("content_hash").fill_null(""))
        .sort("row", "check", "kind", maintain_order=True)
        .with_columns(pl.int_range(pl.len()).over(_KEY).alias("_occurrence"))
    )


def compare(result: "AuditResult", baseline: "AuditResult", *, path: str | None = None) -> BaselineComparison:
    """Match ``result``'s findings against ``baseline``'s by (content hash, check, kind).

    Keys are counted as multisets: when the baseline had two findings of one key (say two
    kept exact copies) and the new audit has three, the one on the latest row is new. A check
    that failed in ``result`` looked at nothing, so none of its baseline findings is resolved.
    """
    current = _keyed(result.findings, result.rows)
    old = _keyed(baseline.findings, baseline.rows) if baseline.findings.height else current.clear()
    old_counts = old.group_by(_KEY).agg(pl.len().alias("_old"))
    new_counts = current.group_by(_KEY).agg(pl.len().alias("_now"))
    compared = (
        current.join(old_counts, on=_KEY, how="left")
        .with_columns(pl.when(pl.col("_occurrence") < pl.col("_old").fill_null(0)).then(pl.lit(UNCHANGED))
                      .otherwise(pl.lit(NEW)).alias("baseline"))
        .drop("_occurrence", "_old")
        .sort("row", "check", "kind")
    )
    resolved = (
        old.filter(~pl.col("check").is_in(list(result.failed_checks)))
        .join(new_counts, on=_KEY, how="left")
        .filter(pl.col("_occurrence") >= pl.col("_now").fill_null(0))
        .drop("_occurrence", "_now")
        .sort("row", "check", "kind")
    )
    return BaselineComparison(findings=compared, resolved=resolved, path=path)
