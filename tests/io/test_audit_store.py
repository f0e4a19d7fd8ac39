"""The saved-audit store deals in frames and JSON; AuditResult.save/load and the report build on it."""

from __future__ import annotations

import polars as pl

from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.io.audit_store import FINDINGS_FILE, REPORT_FILE, SUMMARY_FILE, read_audit, save_audit
from tests.io.test_audit_dir import make_result


def test_frames_findings_and_summary_round_trip_without_an_audit_result(tmp_path):
    result = make_result("one", 3)
    out = save_audit(tmp_path / "audit", frames=result.frames(), findings=result.findings, summary=result.summary)
    loaded = read_audit(out, findings_schema=FINDING_SCHEMA)
    assert loaded["rows"].equals(result.rows) and loaded["clusters"].equals(result.clusters)
    assert loaded["findings"].equals(result.findings) and loaded["summary"] == result.summary
    assert loaded["coverage"].width == 0  # an empty frame is not written, and reads back empty
    assert sorted(path.name for path in out.iterdir()) == sorted(["rows.parquet", "clusters.parquet", FINDINGS_FILE,
                                                                   SUMMARY_FILE])


def test_an_extra_file_is_written_in_the_staging_folder_and_swapped_in_with_the_rest(tmp_path):
    result = make_result("one", 2)
    seen = []

    def write(path):
        seen.append(path)
        assert path.parent.name != "audit" and (path.parent / SUMMARY_FILE).exists()  # staging, frames already there
        path.write_text("extra", encoding="utf-8")

    out = save_audit(tmp_path / "audit", frames=result.frames(), findings=result.findings, summary=result.summary,
                     extra_files={REPORT_FILE: write})
    assert len(seen) == 1 and (out / REPORT_FILE).read_text(encoding="utf-8") == "extra"


def test_save_with_report_writes_the_report_through_the_report_module(tmp_path):
    from dataaudit.result import AuditResult

    result = make_result("one", 2)
    result.summary.update({"dataset": {"path": None, "records": 2}, "checks": {}})
    out = result.save(tmp_path / "audit", report=True)
    assert (out / REPORT_FILE).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert AuditResult.load(out).summary["report_path"] == str(tmp_path / "audit" / REPORT_FILE)
    assert AuditResult.load(out).rows.equals(result.rows)


def test_the_findings_schema_is_the_callers(tmp_path):
    result = make_result("one", 2)
    save_audit(tmp_path / "audit", frames=result.frames(), findings=result.findings, summary=result.summary)
    narrow = {"row": pl.Int64, "check": pl.String}
    loaded = read_audit(tmp_path / "audit", findings_schema=narrow)
    assert loaded["findings"].columns == ["row", "check"]
