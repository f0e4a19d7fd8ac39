"""AuditResult: everything an audit found, as polars frames, saved as Parquet + JSON.

Never pickle: a saved audit is plain files other tools can read, and
:meth:`AuditResult.load` reopens it without recomputing anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dataaudit.checks.base import FINDING_SCHEMA, SEVERITY_RANK
from dataaudit.io.atomic import atomic_path, write_text_atomic

#: Files of a saved audit; names other tools rely on.
FRAME_FILES = {
    "rows": "rows.parquet",
    "clusters": "clusters.parquet",
    "coverage": "coverage.parquet",
    "gaps": "gaps.parquet",
    "cluster_coverage": "cluster_coverage.parquet",
}
FINDINGS_FILE = "findings.jsonl"
SUMMARY_FILE = "summary.json"


def _empty() -> pl.DataFrame:
    return pl.DataFrame()


@dataclass
class AuditResult:
    """Results of one audit. Frames are keyed by ``row`` (training) or production ``row``."""

    rows: pl.DataFrame
    findings: pl.DataFrame
    clusters: pl.DataFrame
    summary: dict[str, Any]
    coverage: pl.DataFrame = field(default_factory=_empty)
    gaps: pl.DataFrame = field(default_factory=_empty)
    cluster_coverage: pl.DataFrame = field(default_factory=_empty)

    # -- exploration -------------------------------------------------------------------
    def issues(self, check: str) -> pl.DataFrame:
        """Rows flagged by ``check``, worst first, with their reason and suggestion."""
        flagged = self.findings.filter(pl.col("check") == check).drop("check")
        text = self.rows.select([c for c in ("row", "prompt", "response", "label") if c in self.rows.columns])
        return flagged.join(text, on="row", how="left").sort(["score", "row"])

    def cluster(self, cluster_id: int) -> pl.DataFrame:
        """Every row of one cluster (noise rows whose nearest cluster it is included)."""
        return self.rows.filter(pl.col("nearest_cluster") == cluster_id)

    def flagged_rows(self, *, checks: list[str] | None = None, min_severity: str = "info") -> pl.DataFrame:
        limit = SEVERITY_RANK[min_severity]
        chosen = self.findings.filter(pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int64) <= limit)
        if checks is not None:
            chosen = chosen.filter(pl.col("check").is_in(checks))
        return chosen

    def plot(self, *, color_by: str = "cluster", max_points: int = 5000):
        """The 2-D map (SVG), coloured by cluster or by issue; hover a point for its prompt."""
        from dataaudit.report.plot import map_plot

        return map_plot(self.rows, color_by=color_by, max_points=max_points)

    def export(self, *, clean, rejected, dataset=None, drop=None, min_severity: str = "warning",
               annotate: bool = False, to: str | None = None, relabel: bool = False, changes=None):
        """Write the cleaned dataset (see :func:`dataaudit.export.export_clean`).

        ``dataset`` defaults to reloading the audited file, which must be unchanged.
        """
        from dataaudit.checks import BUILTIN_CHECKS
        from dataaudit.export import export_clean
        from dataaudit.io.load import load

        if dataset is None:
            dataset = load(self.summary["dataset"]["path"], skip_bad_lines=True)
        return export_clean(dataset, self, clean=clean, rejected=rejected, drop=drop or BUILTIN_CHECKS,
                            min_severity=min_severity, annotate=annotate, to=to, relabel=relabel, changes=changes)

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, filename in FRAME_FILES.items():
            frame: pl.DataFrame = getattr(self, name)
            if frame.width == 0:
                (out / filename).unlink(missing_ok=True)
                continue
            with atomic_path(out / filename) as temp:
                frame.write_parquet(temp)
        lines = [json.dumps(record, ensure_ascii=False) for record in self.findings.iter_rows(named=True)]
        write_text_atomic(out / FINDINGS_FILE, "".join(line + "\n" for line in lines))
        write_text_atomic(out / SUMMARY_FILE, json.dumps(self.summary, indent=2, ensure_ascii=False, default=str) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AuditResult":
        from dataaudit.errors import InputError

        source = Path(directory)
        if not (source / SUMMARY_FILE).exists():
            raise InputError(f"not an audit directory (no {SUMMARY_FILE})", path=str(source))
        frames = {
            name: pl.read_parquet(source / filename) if (source / filename).exists() else _empty()
            for name, filename in FRAME_FILES.items()
        }
        findings_path = source / FINDINGS_FILE
        records = [json.loads(line) for line in findings_path.read_text(encoding="utf-8").splitlines() if line.strip()] if findings_path.exists() else []
        findings = pl.DataFrame(records, schema=FINDING_SCHEMA) if records else pl.DataFrame(schema=FINDING_SCHEMA)
        summary = json.loads((source / SUMMARY_FILE).read_text(encoding="utf-8"))
        return cls(findings=findings, summary=summary, **frames)

    def _repr_html_(self) -> str:
        from html import escape

        counts = self.summary.get("issues_by_check", {})
        items = "".join(f"<li>{escape(str(name))}: {int(count):,}</li>" for name, count in counts.items())
        dataset = self.summary.get("dataset", {})
        return (
            f"<div><b>dataaudit.AuditResult</b> — {escape(str(dataset.get('path')))}: "
            f"{int(dataset.get('records', 0)):,} records, {self.clusters.height} clusters"
            f"<ul>{items}</ul></div>"
        )
