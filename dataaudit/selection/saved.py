"""A selection recorded in its audit directory, and the audit's report re-rendered with it.

``dataaudit select --audit DIR`` records what it chose in DIR (``selection.parquet``: the
per-row table; ``selection.json``: the summary and the per-cluster counts), and
``finetune --selection`` its verification beside it (``selection_verification.parquet``: the
comparisons; ``selection_verification.json``: the runs and the summary). Every file is written
atomically. Each record carries a digest of the selected rows, so a report can tell a
verification of this selection from one of an earlier or a different one.

:func:`rewrite_report` sits here, above both ``finetune_runner`` and the report, because it is
the one place that can gather every section saved beside an audit (its fine-tune too).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import polars as pl

from dataaudit.selection import TABLE_FILE

if TYPE_CHECKING:
    from dataaudit.selection import Selection
    from dataaudit.selection.verify import SelectionVerification

__all__ = ["SUMMARY_FILE", "VERIFICATION_FILE", "VERIFICATION_SUMMARY_FILE", "SavedSelection", "load_selection",
           "record_selection", "rewrite_report", "save_verification", "selection_digest"]

SUMMARY_FILE = "selection.json"
VERIFICATION_FILE = "selection_verification.parquet"
VERIFICATION_SUMMARY_FILE = "selection_verification.json"
#: The per-cluster table's columns, as :func:`dataaudit.selection.select` builds them.
CLUSTER_SCHEMA = {"cluster": pl.Int64, "pool": pl.Int64, "quota": pl.Int64, "selected": pl.Int64,
                  "pool_share": pl.Float64, "production_share": pl.Float64, "selected_share": pl.Float64}
COMPARISON_SCHEMA = {"comparison": pl.String, "set": pl.String, "metric": pl.String, "effect": pl.Float64,
                     "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64, "verdict": pl.String,
                     "rows_factor_needed": pl.Float64}


def selection_digest(rows: Iterable[int]) -> str:
    """A short fingerprint of a set of rows (order and repeats ignored)."""
    unique = np.unique(np.fromiter((int(r) for r in rows), dtype=np.int64))
    return hashlib.sha256(unique.astype("<i8").tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class SavedSelection:
    """What an audit directory holds about a selection.

    ``summary`` and ``clusters`` (None and an empty frame when only a verification was saved), and the verification's ``comparisons``,
    ``runs`` and ``verification_summary`` (None when none was saved). ``same_selection`` is
    whether the verification tested the recorded selection (None when one of the two is missing
    or predates the digest).
    """

    summary: dict[str, Any] | None
    clusters: pl.DataFrame
    comparisons: pl.DataFrame | None
    runs: pl.DataFrame | None
    verification_summary: dict[str, Any] | None

    @property
    def same_selection(self) -> bool | None:
        """Whether the verification tested the recorded selection (None: one is missing or undigested)."""
        recorded = (self.summary or {}).get("digest")
        verified = (self.verification_summary or {}).get("selection_digest")
        return None if recorded is None or verified is None else recorded == verified


def record_selection(selection: "Selection", directory: str | os.PathLike) -> Path:
    """Write ``selection`` into the audit ``directory``.

    Its table, summary and per-cluster counts; then re-render the directory's report, when it has one, with the selection.
    """
    from dataaudit.io.atomic import atomic_path
    from dataaudit.io.audit_store import REPORT_FILE

    target = Path(directory)
    with atomic_path(target / TABLE_FILE) as temp:
        selection.table.write_parquet(temp)
    record = {"summary": {**selection.summary, "digest": selection_digest(selection.rows)},
              "clusters": selection.clusters.to_dicts()}
    path = _write_json(target / SUMMARY_FILE, record)
    if (target / REPORT_FILE).exists():
        rewrite_report(target)
    return path


def save_verification(verification: "SelectionVerification", path: str | os.PathLike) -> Path:
    """Save the comparisons as Parquet at ``path``.

    The runs and the summary go as JSON beside it (same name, ``.json``).
    """
    from dataaudit.io.atomic import atomic_path

    target = Path(path)
    with atomic_path(target) as temp:
        verification.comparisons.write_parquet(temp)
    return _write_json(target.with_suffix(".json"),
                       {"summary": verification.summary, "runs": verification.runs.to_dicts()})


def load_selection(directory: str | os.PathLike) -> SavedSelection | None:
    """Read the selection and verification saved in ``directory``; None when it holds neither.

    A file that cannot be read raises :class:`~dataaudit.errors.InputError` naming it.
    """
    source = Path(directory)
    record = _read_json(source / SUMMARY_FILE) if (source / SUMMARY_FILE).exists() else None
    verified = source / VERIFICATION_FILE
    if record is None and not verified.exists():
        return None
    summary, clusters = None, pl.DataFrame(schema=CLUSTER_SCHEMA)
    if record is not None:
        summary = _mapping(record.get("summary"), source / SUMMARY_FILE)
        clusters = _frame(record.get("clusters"), CLUSTER_SCHEMA, source / SUMMARY_FILE)
    comparisons = runs = verification_summary = None
    if verified.exists():
        comparisons = _read_parquet(verified)
        missing = set(COMPARISON_SCHEMA) - set(comparisons.columns)
        if missing:
            from dataaudit.errors import InputError

            raise InputError(f"selection comparisons lack the column(s) {sorted(missing)}", path=str(verified))
        about = source / VERIFICATION_SUMMARY_FILE
        if about.exists():  # older `finetune --selection` runs wrote only the comparisons
            saved = _read_json(about)
            verification_summary = _mapping(saved.get("summary"), about)
            runs = _frame(saved.get("runs"), None, about)
    return SavedSelection(summary=summary, clusters=clusters, comparisons=comparisons, runs=runs,
                          verification_summary=verification_summary)


def rewrite_report(directory: str | os.PathLike) -> Path:
    """Re-render ``directory``'s report.html from what is saved there.

    That is the audit, its fine-tune (``finetune/``, when ``dataaudit finetune`` wrote it) and its selection.
    """
    import dataclasses

    from dataaudit.finetune.result import SUMMARY_FILE as FINETUNE_SUMMARY
    from dataaudit.finetune.result import FineTuneResult
    from dataaudit.finetune_runner import REPORT_KEYS, with_verdicts
    from dataaudit.io.audit_store import REPORT_FILE
    from dataaudit.report.html import write_report
    from dataaudit.result import AuditResult

    source = Path(directory)
    result = AuditResult.load(source)
    if (source / "finetune" / FINETUNE_SUMMARY).exists():
        finetune = FineTuneResult.load(source / "finetune")
        section = {key: finetune.summary[key] for key in REPORT_KEYS if key in finetune.summary}
        result = dataclasses.replace(result, findings=with_verdicts(result.findings, finetune.row_verdicts),
                                     summary={**result.summary, "finetune": section})
    return write_report(result, source / REPORT_FILE, selection=load_selection(source))


def _write_json(path: Path, value: Any) -> Path:
    from dataaudit.io.atomic import write_text_atomic
    from dataaudit.jsonsafe import dumps_strict

    write_text_atomic(path, dumps_strict(value, indent=2) + "\n")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    from dataaudit.errors import InputError

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:
        raise InputError(f"cannot read the selection record ({error}); run the command that wrote it again",
                         path=str(path)) from None
    if not isinstance(value, dict):
        raise InputError("expected a JSON object", path=str(path), line=1)
    return value


def _read_parquet(path: Path) -> pl.DataFrame:
    from dataaudit.errors import InputError

    try:
        return pl.read_parquet(path)
    except Exception as error:  # polars raises many distinct types for unreadable files
        raise InputError(f"cannot read the selection record ({str(error).splitlines()[0][:200]})",
                         path=str(path)) from None


def _mapping(value: Any, path: Path) -> dict[str, Any]:
    from dataaudit.errors import InputError

    if not isinstance(value, dict):
        raise InputError("the record's 'summary' is not a JSON object", path=str(path))
    return value


def _frame(value: Any, schema: dict[str, Any] | None, path: Path) -> pl.DataFrame:
    from dataaudit.errors import InputError

    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError("expected a list of JSON objects", path=str(path))
    try:
        return pl.DataFrame(value, schema=schema) if schema is not None or value else pl.DataFrame()
    except Exception as error:  # polars raises several types for values of the wrong type
        raise InputError(f"the record's table does not match its columns ({str(error).splitlines()[0][:200]})",
                         path=str(path)) from None
