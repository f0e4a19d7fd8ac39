"""The full audit on the bundled sample data, with the real model: every planted issue is found."""

from __future__ import annotations

import json
from collections import defaultdict

import polars as pl
import pytest
from click.testing import CliRunner

from dataaudit.cli import main
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.slow

#: Which check must flag each planted kind.
EXPECTED_CHECK = {
    "exact_duplicate": "duplicate",
    "near_duplicate": "duplicate",
    "conflicting_label": "conflict",
    "label_vocabulary": "conflict",
    "conflicting_answer": "conflict",
    "format_deviation": "format",
    "empty_response": "quality",
    "truncated_response": "quality",
    "refusal": "quality",
    "placeholder": "quality",
    "pii": "quality",
}


def run_audit(out_dir, *extra):
    arguments = ["audit", str(SAMPLE_DATA / "train.jsonl"), "--production", str(SAMPLE_DATA / "production.jsonl"),
                 "--out", str(out_dir), "--quiet", *extra]
    return CliRunner().invoke(main, arguments)


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample-audit")
    result = run_audit(out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def planted():
    return [json.loads(line) for line in (SAMPLE_DATA / "planted.jsonl").read_text().splitlines()]


def flagged_by_check(audit_dir):
    flagged = defaultdict(set)
    for line in (audit_dir / "findings.jsonl").read_text().splitlines():
        finding = json.loads(line)
        flagged[finding["row"]].add(finding["check"])
    return flagged


def test_every_planted_issue_is_found_by_its_check(audit_dir, planted):
    flagged = flagged_by_check(audit_dir)
    missed = [(p["row"], p["kind"]) for p in planted if p["kind"] in EXPECTED_CHECK and EXPECTED_CHECK[p["kind"]] not in flagged[p["row"]]]
    assert missed == []


def test_clean_rows_are_rarely_flagged(audit_dir, planted):
    """Unplanted flags stay rare: the ones seen are real near duplicates (a greeting or an
    "it's urgent" suffix on the same support message) and an ambiguous label or two."""
    flagged = flagged_by_check(audit_dir)
    planted_rows = {p["row"] for p in planted}
    unplanted = [row for row in flagged if row not in planted_rows]
    assert len(unplanted) <= 0.01 * 2991
    assert all(flagged[row] <= {"duplicate", "conflict"} for row in unplanted)


def test_duplicate_groups_keep_their_first_row(audit_dir):
    rows = pl.read_parquet(audit_dir / "rows.parquet")
    grouped = rows.filter(pl.col("duplicate_group").is_not_null())
    kept = grouped.filter(~pl.col("is_duplicate_issue"))
    assert (kept.get_column("row") == kept.get_column("duplicate_group")).all()
    assert (grouped.get_column("duplicate_group") <= grouped.get_column("row")).all()


def test_output_files_and_summary(audit_dir):
    for name in ("rows.parquet", "clusters.parquet", "findings.jsonl", "summary.json", "coverage.parquet", "gaps.parquet", "report.html"):
        assert (audit_dir / name).exists(), name
    summary = json.loads((audit_dir / "summary.json").read_text())
    assert all(info["status"] == "ok" for info in summary["checks"].values())
    assert summary["dataset"]["records"] == 2991
    assert summary["clusters"]["noise_share"] < 0.15
    rows = pl.read_parquet(audit_dir / "rows.parquet")
    assert rows.height == 2991 and rows.get_column("nearest_cluster").min() >= 0


def test_report_escapes_hostile_prompts(audit_dir):
    html = (audit_dir / "report.html").read_text()
    assert '<script>alert("x")</script>' not in html
    assert "onerror=alert(1)>" not in html


def test_same_seed_gives_identical_results(audit_dir, tmp_path):
    result = run_audit(tmp_path)
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "rows.parquet").equals(pl.read_parquet(audit_dir / "rows.parquet"))
    assert (tmp_path / "findings.jsonl").read_bytes() == (audit_dir / "findings.jsonl").read_bytes()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["timings"].get("embed_prompt", 0) < 5  # served from the cache


def test_fail_on_gates_with_exit_code_1(audit_dir, tmp_path):
    result = run_audit(tmp_path, "--checks", "quality", "--fail-on", "error")
    assert result.exit_code == 1


def test_export_drops_planted_issues_and_keeps_the_rest(audit_dir, planted, tmp_path):
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    result = CliRunner().invoke(main, ["export", str(SAMPLE_DATA / "train.jsonl"), "--audit", str(audit_dir),
                                       "--out", str(clean), "--rejected", str(rejected),
                                       "--drop", "duplicate,conflict,format,quality", "--min-severity", "info"])
    assert result.exit_code == 0, result.output
    source = (SAMPLE_DATA / "train.jsonl").read_bytes().splitlines()
    kept = clean.read_bytes().splitlines()
    dropped = {json.loads(line)["row"]: json.loads(line) for line in rejected.read_text().splitlines()}
    assert len(kept) + len(dropped) == len(source)
    assert kept == [line for row, line in enumerate(source) if row not in dropped]
    planted_rows = {p["row"] for p in planted if p["kind"] in EXPECTED_CHECK}
    assert planted_rows <= set(dropped)
    assert all(entry["reasons"] for entry in dropped.values())
