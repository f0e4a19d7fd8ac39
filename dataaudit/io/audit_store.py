"""A saved audit on disk: Parquet frames, ``findings.jsonl`` and ``summary.json``, swapped in whole.

Never pickle: a saved audit is plain files other tools can read, reopened without recomputing.
This module deals in frames and JSON only (it does not know :class:`~dataaudit.result.AuditResult`),
so persistence sits in the io layer and the result and report layers build on it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from dataaudit.io.atomic import atomic_dir, atomic_path, recover_interrupted_swap, write_text_atomic
from dataaudit.io.staging import make_staging, remove_stale_staging
from dataaudit.jsonsafe import dumps_strict

__all__ = ["FINDINGS_FILE", "FRAME_FILES", "REPORT_FILE", "SUMMARY_FILE", "check_output_dir", "read_audit",
           "save_audit"]

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
#: The HTML report written beside them (see :func:`dataaudit.report.html.save_with_report`).
REPORT_FILE = "report.html"
_AUDIT_OUTPUTS = frozenset([*FRAME_FILES.values(), FINDINGS_FILE, SUMMARY_FILE, REPORT_FILE])


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


def save_audit(directory: str | os.PathLike, *, frames: Mapping[str, pl.DataFrame], findings: pl.DataFrame,
               summary: Mapping[str, Any], extra_files: Mapping[str, Callable[[Path], Any]] | None = None) -> Path:
    """Write ``frames`` (keyed as :data:`FRAME_FILES`), the findings and the summary into ``directory``.

    The files are written into a temporary sibling folder that is then swapped in, so a run
    killed at any moment leaves the whole old audit or the whole new one, never a mix. Files in
    an existing ``directory`` that are not audit outputs (a ``finetune/`` folder, notes) are
    carried over. Refuses a ``directory`` that is a file, and any output that would replace the
    audited or production input named in ``summary``. Staging folders that killed saves left
    beside ``directory`` are removed first (see :func:`dataaudit.io.staging.remove_stale_staging`).
    ``extra_files`` maps a file name to a writer called with its path inside the staging folder
    (the report), so it is swapped in with the rest.
    """
    out = Path(directory)
    out = Path(os.path.realpath(out)) if out.is_symlink() else out
    check_output_dir(out, inputs=[(summary.get(key) or {}).get("path") for key in ("dataset", "production")])
    recover_interrupted_swap(out)
    remove_stale_staging(out)  # what earlier saves, killed mid-way, left beside it
    with atomic_dir(out, replace=True, make_staging=make_staging) as staging:
        _write_files(staging, frames=frames, findings=findings, summary=summary)
        for name, write in (extra_files or {}).items():
            write(staging / name)
        if out.is_dir():
            _carry_over(out, staging)
    return out


def _write_files(out: Path, *, frames: Mapping[str, pl.DataFrame], findings: pl.DataFrame,
                 summary: Mapping[str, Any]) -> None:
    for name, filename in FRAME_FILES.items():
        frame = frames.get(name)
        if frame is None or frame.width == 0:
            continue
        with atomic_path(out / filename) as temp:
            frame.write_parquet(temp)
    rows = frames.get("rows")
    if rows is not None and "source_file" in rows.columns and "source_file" not in findings.columns:
        findings = findings.join(rows.select("row", "source_file"), on="row", how="left")
    lines = [dumps_strict(record) for record in findings.iter_rows(named=True)]
    write_text_atomic(out / FINDINGS_FILE, "".join(line + "\n" for line in lines))
    write_text_atomic(out / SUMMARY_FILE, dumps_strict(summary, indent=2) + "\n")


def read_audit(directory: str | os.PathLike, *, findings_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The frames (:data:`FRAME_FILES` keys; empty when absent), ``findings`` and ``summary`` of a saved audit.

    ``findings_schema`` is the findings' polars schema (the caller's: io does not know checks).
    Unreadable or malformed files raise :class:`~dataaudit.errors.InputError` naming the file (and line).
    """
    from dataaudit.errors import InputError

    source = Path(directory)
    if not (source / SUMMARY_FILE).exists():
        raise InputError(f"not an audit directory (no {SUMMARY_FILE})", path=str(source))
    frames: dict[str, Any] = {
        name: _read_parquet(source / filename) if (source / filename).exists() else pl.DataFrame()
        for name, filename in FRAME_FILES.items()
    }
    findings_path = source / FINDINGS_FILE
    records = _read_jsonl(findings_path) if findings_path.exists() else []
    try:
        findings = pl.DataFrame(records, schema=findings_schema) if records else pl.DataFrame(schema=findings_schema)
    except Exception as error:  # polars raises several types for values of the wrong type
        raise InputError(f"findings do not match the expected columns ({str(error).splitlines()[0][:200]})",
                         path=str(findings_path)) from None
    summary = _read_json(source / SUMMARY_FILE)
    if not isinstance(summary, dict):
        raise InputError("expected a JSON object", path=str(source / SUMMARY_FILE), line=1)
    return {**frames, "findings": findings, "summary": summary}


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
