"""The baseline comparison: findings matched by (row content, check, kind), not by position."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from dataaudit.baseline import NEW, UNCHANGED, compare, content_hash_frame
from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.cli import main
from dataaudit.result import AuditResult

TOPICS = ["apples", "trains", "rivers", "violins", "glaciers", "kites", "lanterns", "otters", "comets", "bridges",
          "tulips", "robots", "castles", "deserts", "pianos", "volcanoes", "bicycles", "owls", "harbors", "meteors",
          "orchards", "compasses", "lighthouses", "canyons"]
RECORDS = [{"prompt": f"Write one sentence about {topic} for a {grade}th grade class.",
            "completion": f"{topic.capitalize()} are a wonderful subject; here is a fact about {topic} number {index}."}
           for index, (topic, grade) in enumerate(zip(TOPICS, [3, 4, 5, 6] * 6))]
RECORDS.append(dict(RECORDS[4]))  # an exact copy the team decided to keep


def write(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def result_of(rows: list[tuple[int, str, str | None]], findings: list[tuple[int, str, str]]) -> AuditResult:
    frame = pl.DataFrame({"row": [r for r, _, _ in rows], "prompt": [p for _, p, _ in rows],
                          "response": [a for _, _, a in rows], "label": [None] * len(rows)},
                         schema={"row": pl.Int64, "prompt": pl.String, "response": pl.String, "label": pl.String})
    records = [{"row": row, "check": check, "kind": kind, "score": 0.1, "severity": "warning", "cluster": 0,
                "group": None, "reason": "r", "suggestion": None, "suggested_value": None} for row, check, kind in findings]
    return AuditResult(rows=frame, findings=pl.DataFrame(records, schema=FINDING_SCHEMA), clusters=pl.DataFrame(), summary={})


def test_content_hash_ignores_position_and_is_stable():
    frame = pl.DataFrame({"prompt": ["a", "b", "a"], "response": ["x", "y", "x"], "label": [None, None, None]})
    hashes = content_hash_frame(frame).to_list()
    assert hashes[0] == hashes[2] != hashes[1]
    assert hashes == content_hash_frame(frame.reverse()).to_list()[::-1]
    # Separators cannot be forged: ("ab", "c") and ("a", "bc") differ.
    other = pl.DataFrame({"prompt": ["ab", "a"], "response": ["c", "bc"], "label": [None, None]})
    assert len(set(content_hash_frame(other).to_list())) == 2


def test_reordered_findings_are_unchanged_and_others_new_or_resolved():
    old = result_of([(0, "p0", "a"), (1, "p1", "b"), (2, "p2", "c")], [(1, "duplicate", "near"), (2, "quality", "empty")])
    new = result_of([(0, "p2", "c"), (1, "p1", "b"), (2, "p0", "a"), (3, "p3", "d")],
                    [(1, "duplicate", "near"), (0, "quality", "truncated"), (3, "duplicate", "near")])
    comparison = compare(new, old, path="old")
    statuses = {(row, check, kind): status for row, check, kind, status in
                comparison.findings.select("row", "check", "kind", "baseline").iter_rows()}
    assert statuses == {(1, "duplicate", "near"): UNCHANGED, (0, "quality", "truncated"): NEW, (3, "duplicate", "near"): NEW}
    assert comparison.resolved.select("row", "check", "kind").rows() == [(2, "quality", "empty")]
    assert comparison.summary() == {"path": "old", "new": 2, "unchanged": 1, "resolved": 1, "new_rows": [0, 3]}


def test_a_third_copy_is_the_new_one():
    """Keys count as multisets: two kept copies stay unchanged, the appended third is new."""
    old = result_of([(0, "p", "a"), (1, "p", "a")], [(0, "duplicate", "exact"), (1, "duplicate", "exact")])
    new = result_of([(0, "p", "a"), (1, "p", "a"), (2, "p", "a")],
                    [(0, "duplicate", "exact"), (1, "duplicate", "exact"), (2, "duplicate", "exact")])
    assert compare(new, old).new_rows == [2]
    assert compare(old, new).resolved.get_column("row").to_list() == [2]


@pytest.fixture
def baseline_dir(hashing_cli, tmp_path):
    data = write(tmp_path / "data.jsonl", RECORDS)
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / "baseline"), "--fail-on", "warning",
                                          "--no-cache"])
    assert completed.exit_code == 1, completed.output  # the kept copy fails a plain gate
    return tmp_path / "baseline"


def gate(runner, data, baseline, out):
    completed = runner.invoke(main, ["audit", str(data), "--out", str(out), "--baseline", str(baseline),
                                     "--fail-on", "warning", "--no-cache"])
    return completed, json.loads((out / "summary.json").read_text())["baseline"]


def test_gate_passes_on_unchanged_and_reordered_data(hashing_cli, baseline_dir, tmp_path):
    completed, counts = gate(hashing_cli, tmp_path / "data.jsonl", baseline_dir, tmp_path / "same")
    assert completed.exit_code == 0, completed.output
    assert counts["new"] == 0 and counts["resolved"] == 0 and counts["unchanged"] >= 1
    assert "0 new findings" in completed.output

    shuffled = RECORDS[:]
    random.Random(3).shuffle(shuffled)
    completed, counts = gate(hashing_cli, write(tmp_path / "shuffled.jsonl", shuffled), baseline_dir, tmp_path / "shuf")
    assert completed.exit_code == 0, completed.output
    assert counts["new"] == 0


def test_gate_fails_on_exactly_the_appended_near_duplicates(hashing_cli, baseline_dir, tmp_path):
    near = [{"prompt": RECORDS[i]["prompt"].replace("Write one", "Write  one").rstrip(".") + "!",
             "completion": RECORDS[i]["completion"]} for i in (2, 9)]
    completed, counts = gate(hashing_cli, write(tmp_path / "more.jsonl", RECORDS + near), baseline_dir, tmp_path / "more")
    assert completed.exit_code == 1, completed.output
    assert counts["new_rows"] == [len(RECORDS), len(RECORDS) + 1]
    assert counts["resolved"] == 0


def test_dataset_hashes_match_the_saved_rows(tmp_path):
    from dataaudit.io.load import load

    dataset = load(write(tmp_path / "data.jsonl", RECORDS))
    rows = dataset.frame.select("prompt", "response", "label")
    assert dataset.content_hashes().to_list() == content_hash_frame(rows).to_list()
    assert dataset.content_hashes()[4] == dataset.content_hashes()[len(RECORDS) - 1]  # the kept copy


def test_the_api_compares_with_a_baseline_as_the_cli_does(tmp_path):
    from dataaudit.runner import audit

    config = {"embed": {"name": "hashing"}, "cluster": {"reducer": {"name": "none"}, "mapper": {"name": "pca"}},
              "audit": {"checks": ["duplicate"]}}
    first = audit(write(tmp_path / "data.jsonl", RECORDS), config=config)
    first.save(tmp_path / "baseline")
    assert first.gate_findings().height == first.findings.height > 0  # no baseline: every finding counts
    near = [{"prompt": RECORDS[i]["prompt"].replace("Write one", "Write  one").rstrip(".") + "!",
             "completion": RECORDS[i]["completion"]} for i in (2, 9)]
    for baseline in (tmp_path / "baseline", first):  # a directory or a result in memory
        again = audit(write(tmp_path / "more.jsonl", RECORDS + near), config=config, baseline=baseline)
        counts = again.summary["baseline"]
        assert counts["new_rows"] == [len(RECORDS), len(RECORDS) + 1] and counts["resolved"] == 0
        assert sorted(set(again.gate_findings().get_column("row").to_list())) == counts["new_rows"]
    assert again.summary["baseline"]["path"] is None and counts["unchanged"] == first.findings.height


def test_a_missing_baseline_fails_before_the_audit_runs(tmp_path):
    from dataaudit.errors import InputError
    from dataaudit.runner import audit

    with pytest.raises(InputError, match="nothing-here"):
        audit(tmp_path / "no-data-needed.jsonl", baseline=tmp_path / "nothing-here")
