"""AuditResult: everything an audit found, as polars frames, saved as Parquet + JSON.

Never pickle: a saved audit is plain files other tools can read, and
:meth:`AuditResult.load` reopens it without recomputing anything.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import polars as pl

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.io.atomic import atomic_dir, atomic_path, recover_interrupted_swap, write_text_atomic
from dataaudit.io.staging import make_staging, remove_stale_staging
from dataaudit.jsonsafe import dumps_strict
from dataaudit.severity import at_least
from dataaudit.summary import AuditSummary

if TYPE_CHECKING:
    from dataaudit.baseline import BaselineComparison

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
#: The HTML report the CLI writes beside them (see :func:`dataaudit.report.html.write_report`).
REPORT_FILE = "report.html"


def check_output_dir(directory: str | os.PathLike, *, inputs: Sequence[str | os.PathLike | None]) -> None:
    """Refuse an audit directory that is a file, or whose outputs would replace an input file."""
    from dataaudit.errors import UsageError
    from dataaudit.io.writers import same_file

    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise UsageError(f"the output directory {out} is an existing file; choose a directory")
    outputs = [*FRAME_FILES.values(), FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE]
    for source in filter(None, inputs):
        if Path(source).is_dir():
            folder, target = Path(source).resolve(), out.resolve()
            if folder == target or folder in target.parents or target in folder.parents:
                raise UsageError(f"the audit directory {out} and the input folder {source} overlap (the audit would be "
                                 "read as data, or replace it); choose another --out")
        for name in outputs:
            if same_file(out / name, source):
                raise UsageError(f"refusing to overwrite the input file {source} with {out / name}; choose another --out")


_AUDIT_OUTPUTS = frozenset([*FRAME_FILES.values(), FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE])


def _carry_over(old: Path, new: Path) -> None:
    """Entries of the old audit folder that are not audit outputs, hard-linked (or copied) into the new."""
    def link_or_copy(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    for entry in old.iterdir():
        if entry.name in _AUDIT_OUTPUTS or (new / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True, copy_function=link_or_copy)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), new / entry.name)
        else:
            link_or_copy(str(entry), str(new / entry.name))


def _read_parquet(path: Path) -> pl.DataFrame:
    from dataaudit.errors import InputError

    try:
        return pl.read_parquet(path)
    except Exception as error:  # polars raises many distinct types for unreadable files
        raise InputError(f"cannot read audit file ({str(error).splitlines()[0][:200]}); re-run the audit", path=str(path)) from None


def _read_json(path: Path) -> Any:
    from dataaudit.errors import InputError

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON: a truncated or edited file
        raise InputError(f"cannot read audit file ({error}); re-run the audit", path=str(path)) from None


def _read_jsonl(path: Path) -> list[Any]:
    from dataaudit.errors import InputError

    try:
        # Split on "\n" only: str.splitlines would also cut at U+2028, U+0085 and \x1c-\x1e,
        # which json.dumps(ensure_ascii=False) leaves raw inside strings.
        lines = path.read_text(encoding="utf-8").split("\n")
    except ValueError as error:
        raise InputError(f"cannot read audit file ({error}); re-run the audit", path=str(path)) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError) as error:
            raise InputError(f"malformed JSON ({error}); re-run the audit", path=str(path), line=number) from None
    return records


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
        """``"ok"``, or ``"failed"`` when a check failed: a gate must not pass on such a result
        (the audit returns it rather than raising, so the other checks' findings are kept)."""
        return "failed" if self.failed_checks else "ok"

    def flagged_rows(self, *, checks: list[str] | None = None, min_severity: str = "info") -> pl.DataFrame:
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

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, *, report: bool = False) -> Path:
        """Write every frame, the summary (and with ``report`` the HTML report) into ``directory``.

        The files are written into a temporary sibling folder that is then swapped in, so a
        run killed at any moment leaves the whole old audit or the whole new one, never a mix.
        Files in an existing ``directory`` that are not audit outputs (a ``finetune/`` folder,
        notes) are carried over. Refuses a ``directory`` that is a file, and any output that would
        replace the audited or production input (say, a dataset called ``findings.jsonl``).
        Staging folders that killed saves left beside ``directory`` are removed first (see
        :func:`dataaudit.io.staging.remove_stale_staging`). With ``report``, the summary records
        the report's path (``report_path``).
        """
        if report:
            self.summary["report_path"] = str(Path(directory) / REPORT_FILE)
        out = Path(directory)
        out = Path(os.path.realpath(out)) if out.is_symlink() else out
        check_output_dir(out, inputs=[(self.summary.get(key) or {}).get("path") for key in ("dataset", "production")])
        recover_interrupted_swap(out)
        remove_stale_staging(out)  # what earlier saves, killed mid-way, left beside it
        with atomic_dir(out, replace=True, make_staging=make_staging) as staging:
            self._write_files(staging, report=report)
            if out.is_dir():
                _carry_over(out, staging)
        return out

    def _write_files(self, out: Path, *, report: bool) -> None:
        for name, filename in FRAME_FILES.items():
            frame: pl.DataFrame = getattr(self, name)
            if frame.width == 0:
                continue
            with atomic_path(out / filename) as temp:
                frame.write_parquet(temp)
        findings = self.findings
        if "source_file" in self.rows.columns and "source_file" not in findings.columns:
            findings = findings.join(self.rows.select("row", "source_file"), on="row", how="left")
        lines = [dumps_strict(record) for record in findings.iter_rows(named=True)]
        write_text_atomic(out / FINDINGS_FILE, "".join(line + "\n" for line in lines))
        write_text_atomic(out / SUMMARY_FILE, dumps_strict(self.summary, indent=2) + "\n")
        if report:
            from dataaudit.report.html import write_report

            write_report(self, out / REPORT_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AuditResult":
        from dataaudit.errors import InputError

        source = Path(directory)
        if not (source / SUMMARY_FILE).exists():
            raise InputError(f"not an audit directory (no {SUMMARY_FILE})", path=str(source))
        frames = {
            name: _read_parquet(source / filename) if (source / filename).exists() else _empty()
            for name, filename in FRAME_FILES.items()
        }
        findings_path = source / FINDINGS_FILE
        records = _read_jsonl(findings_path) if findings_path.exists() else []
        try:
            findings = pl.DataFrame(records, schema=FINDING_SCHEMA) if records else pl.DataFrame(schema=FINDING_SCHEMA)
        except Exception as error:  # polars raises several types for values of the wrong type
            raise InputError(f"findings do not match the expected columns ({str(error).splitlines()[0][:200]})",
                             path=str(findings_path)) from None
        summary = _read_json(source / SUMMARY_FILE)
        if not isinstance(summary, dict):
            raise InputError("expected a JSON object", path=str(source / SUMMARY_FILE), line=1)
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
