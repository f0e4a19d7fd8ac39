"""Export with an audit: the partition holds for every --drop choice; transforms are logged."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks import BUILTIN_CHECKS
from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.errors import UsageError
from dataaudit.export import ANNOTATION_KEY, export_clean
from dataaudit.io.load import load
from dataaudit.result import AuditResult

LINES = [
    '{"text": "where is my card", "label": "card_arrival"}',
    '{"text": "where is my card??", "label": "card_arrival"}',
    "{broken",
    '{"text": "my card has not arrived", "label": "lost_card"}',
    "",
    '{"text": "how do I top up", "label": "top_up"}',
]


def write_source(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return load(path, skip_bad_lines=True)


def fake_result(dataset, findings):
    frame = pl.DataFrame(findings, schema=FINDING_SCHEMA) if findings else pl.DataFrame(schema=FINDING_SCHEMA)
    summary = {"dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint()}}
    return AuditResult(rows=pl.DataFrame({"row": dataset.frame.get_column("row")}), findings=frame,
                       clusters=pl.DataFrame(), summary=summary)


def finding(row, check, severity="warning", reason="r", suggestion=None, kind="issue", suggested_value=None):
    return {"row": row, "check": check, "kind": kind, "score": 0.1, "severity": severity, "cluster": 0, "group": None,
            "reason": reason, "suggestion": suggestion, "suggested_value": suggested_value}


SEVERITY = st.sampled_from(["error", "warning", "info"])
FINDINGS = st.lists(st.builds(finding, st.sampled_from([0, 1, 3, 4]), st.sampled_from(BUILTIN_CHECKS), SEVERITY), max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(findings=FINDINGS, drop=st.sets(st.sampled_from(BUILTIN_CHECKS)), min_severity=SEVERITY)
def test_partition_holds_for_every_drop_choice(tmp_path, findings, drop, min_severity):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, findings)
    clean, rejected = tmp_path / "c.jsonl", tmp_path / "r.jsonl"
    export_clean(dataset, result, clean=clean, rejected=rejected, drop=sorted(drop), min_severity=min_severity)
    kept = clean.read_text().splitlines()
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    by_line = {entry["line"]: entry["record"] for entry in entries}
    assert len(kept) + len(entries) == len(LINES)
    rebuilt, kept_iter = [], iter(kept)
    for number in range(1, len(LINES) + 1):
        rebuilt.append(by_line[number] if number in by_line else next(kept_iter))
    assert rebuilt == LINES
    rank = {"error": 0, "warning": 1, "info": 2}
    expected_drops = {f["row"] for f in findings if f["check"] in drop and rank[f["severity"]] <= rank[min_severity]}
    assert {entry["row"] for entry in entries if entry["row"] is not None and entry["reasons"][0].split(" ")[0] in BUILTIN_CHECKS} == expected_drops


def test_annotate_keeps_every_record_with_findings(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [finding(1, "duplicate", reason="duplicate of row 0")])
    clean = tmp_path / "c.jsonl"
    export_clean(dataset, result, clean=clean, rejected=tmp_path / "r.jsonl", annotate=True)
    records = [json.loads(line) for line in clean.read_text().splitlines()]
    assert len(records) == 4
    assert records[1][ANNOTATION_KEY]["findings"][0]["reason"] == "duplicate of row 0"
    assert records[0][ANNOTATION_KEY]["findings"] == []


def test_convert_to_openai_and_alpaca(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [])
    export_clean(dataset, result, clean=tmp_path / "o.jsonl", rejected=tmp_path / "r.jsonl", to="openai")
    first = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert first == {"messages": [{"role": "user", "content": "where is my card"}, {"role": "assistant", "content": "card_arrival"}]}
    export_clean(dataset, result, clean=tmp_path / "a.jsonl", rejected=tmp_path / "r2.jsonl", to="alpaca")
    assert json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["output"] == "card_arrival"


def test_relabel_applies_suggestions_and_logs_changes(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [finding(3, "conflict", reason="label 'lost_card' disagrees", suggestion="card_arrival",
                                           kind="label_noise", suggested_value="card_arrival")])
    clean = tmp_path / "c.jsonl"
    summary = export_clean(dataset, result, clean=clean, rejected=tmp_path / "r.jsonl", drop=[], relabel=True)
    assert summary.relabeled == 1
    records = [json.loads(line) for line in clean.read_text().splitlines()]
    assert records[2] == {"text": "my card has not arrived", "label": "card_arrival"}
    change = json.loads((tmp_path / "c.jsonl.changes.jsonl").read_text())
    assert change == {"row": 3, "line": 4, "change": "relabel", "from": "lost_card", "to": "card_arrival"}


def test_export_refuses_an_audit_of_other_data(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [])
    result.summary["dataset"]["fingerprint"] = "0" * 32
    with pytest.raises(UsageError, match="fingerprint"):
        export_clean(dataset, result, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")


def test_unknown_drop_check_is_an_error(tmp_path):
    dataset = write_source(tmp_path)
    with pytest.raises(UsageError, match="unknown check"):
        export_clean(dataset, fake_result(dataset, []), clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl", drop=["nope"])


def test_parquet_export(tmp_path):
    from dataaudit.export import to_parquet

    dataset = write_source(tmp_path)
    path = to_parquet(dataset, tmp_path / "d.parquet", fake_result(dataset, []))
    assert pl.read_parquet(path).height == 4


def test_hugging_face_dataset_export(tmp_path):
    pytest.importorskip("datasets")
    from dataaudit.export import to_hf_dataset

    dataset = write_source(tmp_path)
    hf = to_hf_dataset(dataset, fake_result(dataset, []))
    assert hf.num_rows == 4 and hf[0]["prompt"] == "where is my card"
