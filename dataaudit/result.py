"""AuditResult: everything an audit found, as polars frames, saved as Parquet + JSON.

Never pickle: a saved audit is plain files other tools can read (written and read by
:mod:`dataaudit.io.audit_store`), and :meth:`AuditResult.load` reopens it without recomputing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.io.audit_store import (  # noqa: F401  (re-exported: where they lived before)
    FINDINGS_FILE,
    FRAME_FILES,
    REPORT_FILE,
    SUMMARY_FILE,
    check_output_dir,
    read_audit,
    save_audit,
)
from dataaudit.severity import at_least
from dataaudit.summary import AuditSummary

if TYPE_CHECKING:
    from dataaudit.baseline import BaselineComparison


def _empty() -> pl.DataFrame:
    return pl.DataFrame()


@dataclass
class AuditResult:
    """Results of one audit. Frames are keyed by ``row`` (training) or production ``row``."""

    rows: pl.DataFrame
    findings: pl.DataFrame
    clusters: pl.DataFrame
    summary: AuditSummary
    coverage: pl.DataFrame = field(default_factory=_empty)
    gaps: pl.DataFrame = field(default_factory=_empty)
    cluster_coverage: pl.DataFrame = field(default_factory=_empty)
    #: With ``audit(..., baseline=...)``: the comparison (not saved; ``summary["baseline"]`` is).
    baseline: "BaselineComparison | None" = field(default=None, repr=False, compare=False)

    # -- exploration -------------------------------------------------------------------
    def issues(self, check: str) -> pl.DataFrame:
        """Rows flagged by ``check``, worst first, with their reason and suggestion."""
        flagged = self.findings.filter(pl.col("check") == check).drop("check")
        text = self.rows.select([c for c in ("row", "prompt", "response", "label") if c in self.rows.columns])
        return flagged.join(text, on="row", how="left").sort(["score", "row"])

    def cluster(self, cluster_id: int) -> pl.DataFrame:
        """Every row of one cluster (noise rows whose nearest cluster it is included)."""
        return self.rows.filter(pl.col("nearest_cluster") == cluster_id)

    def checks_run(self) -> list[str]:
        """Every check this audit ran (plug-ins included), in run order."""
        names = list(self.summary.get("checks", {}))
        return names + sorted(set(self.findings.get_column("check").unique().to_list()) - set(names))

    def gate_findings(self) -> pl.DataFrame:
        """The findings a gate (``--fail-on``) counts: only the new ones when compared with a baseline."""
        return self.baseline.new if self.baseline is not None else self.findings

    @property
    def failed_checks(self) -> dict[str, str]:
        """``{check: error}`` for each check that raised: its findings are missing, not zero."""
        checks = self.summary.get("checks", {})
        return {name: str(info.get("error") or "") for name, info in checks.items()
                if isinstance(info, dict) and info.get("status") == "failed"}

    @property
    def status(self) -> str:
        """``"ok"``, or ``"failed"`` when a check failed.

        A gate must not pass on a failed result (the audit returns it rather than raising, so the
        other checks' findings are kept).
        """
        return "failed" if self.failed_checks else "ok"

    def flagged_rows(self, *, checks: list[str] | None = None, min_severity: str = "info") -> pl.DataFrame:
        """Return the findings at or above ``min_severity``, of ``checks`` only when given."""
        chosen = self.findings.filter(at_least(min_severity))
        if checks is not None:
            chosen = chosen.filter(pl.col("check").is_in(checks))
        return chosen

    def plot(self, *, color_by: str = "cluster", max_points: int = 5000):
        """The 2-D map (SVG), coloured by cluster or by issue; hover a point for its prompt."""
        from dataaudit.report.plot import map_plot

        return map_plot(self.rows, color_by=color_by, max_points=max_points)

    def export(self, *, clean=None, rejected=None, dataset=None, drop=None, min_severity: str = "warning",
               annotate: bool = False, to: str | None = None, relabel: bool = False, changes=None, out_dir=None):
        """Write the cleaned dataset (see :func:`dataaudit.export.export_clean`), or return it.

        ``dataset`` defaults to reloading the audited input, which must be unchanged; it may be
        anything :func:`~dataaudit.io.load.load` reads. ``drop`` defaults to every check the audit
        ran, plug-ins included. With neither ``clean`` nor ``out_dir``, the kept rows come back as
        a ``datasets.Dataset`` (the audited ``datasets.Dataset`` itself, filtered, when passed).
        """
        from dataaudit.dataset import Dataset
        from dataaudit.export import export_clean, kept_hf_dataset
        from dataaudit.io.load import load

        original = dataset
        if dataset is None:
            if self.summary["dataset"]["path"] is None:
                from dataaudit.errors import UsageError

                raise UsageError("this audit was of data in memory: pass it again as dataset=")
            dataset = load(self.summary["dataset"]["path"], skip_bad_lines=True)
        elif not isinstance(dataset, Dataset):
            dataset = load(dataset, skip_bad_lines=True)
        if clean is None and out_dir is None:
            hf = sys.modules.get("datasets")  # an audited datasets.Dataset must have imported it
            hf_original = original if hf is not None and isinstance(original, (hf.Dataset, hf.DatasetDict)) else None
            return kept_hf_dataset(dataset, self, original=hf_original, drop=drop, min_severity=min_severity)
        return export_clean(dataset, self, clean=clean, rejected=rejected, drop=drop, min_severity=min_severity,
                            annotate=annotate, to=to, relabel=relabel, changes=changes, out_dir=out_dir)

    def require_same_data(self, dataset) -> None:
        """Refuse ``dataset`` unless it is the data this audit saw (same fingerprint and rows).

        Export and the fine-tune address rows by number: on edited data those numbers would
        point at other records, so a mismatch is an error, never a guess.
        """
        from dataaudit.errors import UsageError

        expected = self.summary.get("dataset", {}).get("fingerprint")
        if expected is not None and expected != dataset.fingerprint():
            raise UsageError("the data differs from what this audit saw (fingerprint mismatch); re-run the audit")
        if self.rows.height and self.rows.height != len(dataset):
            raise UsageError(f"the audit has {self.rows.height} rows but the data has {len(dataset)}")

    # -- persistence (files: dataaudit.io.audit_store) ----------------------------------
    def frames(self) -> dict[str, pl.DataFrame]:
        """The frames a saved audit holds, by :data:`~dataaudit.io.audit_store.FRAME_FILES` key."""
        return {name: getattr(self, name) for name in FRAME_FILES}

    def save(self, directory: str | os.PathLike, *, report: bool = False) -> Path:
        """Write every frame and the summary into ``directory``, swapped in whole.

        See :func:`dataaudit.io.audit_store.save_audit` (atomic swap, carried-over files, refused
        outputs). ``report=True`` is :func:`dataaudit.report.html.save_with_report`: the HTML
        report is written by the report module, swapped in with the rest.
        """
        if report:
            from dataaudit.report.html import save_with_report

            return save_with_report(self, directory)
        return save_audit(directory, frames=self.frames(), findings=self.findings, summary=self.summary)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AuditResult":
        """Reopen a saved audit without recomputing (see :func:`dataaudit.io.audit_store.read_audit`)."""
        return cls(**read_audit(directory, findings_schema=FINDING_SCHEMA))

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
