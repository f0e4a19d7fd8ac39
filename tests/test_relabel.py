"""``export --relabel`` end to end on labels people write: spaces, apostrophes and quotes.

The suggestion is read from the finding's ``suggested_value``, never parsed back out of the
prose, so a label like ``card arrival`` or ``can't "top up"`` is applied exactly as written.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dataaudit.checks import RELABEL_KINDS
from dataaudit.cli import main

SUBSET = Path(__file__).resolve().parent / "data" / "banking77_subset" / "banking77_1000.jsonl"
#: Banking77 intents written the way people label by hand.
RENAMED = {"card_arrival": "card arrival", "top_up_failed": "can't \"top up\"", "pending_transfer": "transfer: it's pending"}


def _labelled_file(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """Banking77 rows with human-written labels and every 20th label flipped to another intent."""
    frame = pl.read_ndjson(SUBSET).filter(pl.col("split") == "train")
    records, truth = [], {}
    intents = sorted(set(frame.get_column("intent").to_list()))
    for index, (text, intent) in enumerate(frame.select("text", "intent").iter_rows()):
        label = RENAMED.get(intent, intent.replace("_", " "))
        truth[index] = label
        if index % 20 == 7:
            other = intents[(intents.index(intent) + 5) % len(intents)]
            label = RENAMED.get(other, other.replace("_", " "))
        records.append({"text": text, "label": label})
    path = tmp_path / "banking.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path, truth


@pytest.mark.slow
def test_multi_word_and_quoted_labels_are_relabelled_end_to_end(tmp_path):
    from click.testing import CliRunner

    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.cluster.reducers import NoReducer
    from dataaudit.embed import SentenceTransformerEmbedder
    from dataaudit.runner import audit

    data, truth = _labelled_file(tmp_path)
    audit_dir = tmp_path / "audit"
    # The real MiniLM: label noise is found from what the texts mean, which the hashing embedder can't see.
    result = audit(data, checks=["conflict"], embedder=SentenceTransformerEmbedder(),
                   cluster_pipeline=ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper()))
    result.save(audit_dir)
    findings = [json.loads(line) for line in (audit_dir / "findings.jsonl").read_text().splitlines()]
    label_fixes = [f for f in findings if f["kind"] == "label_noise"]
    assert label_fixes and all(f["suggested_value"] for f in label_fixes)

    clean, changes = tmp_path / "clean.jsonl", tmp_path / "changes.jsonl"
    exported = CliRunner().invoke(main, ["export", str(data), "--audit", str(audit_dir), "--out", str(clean),
                                         "--rejected", str(tmp_path / "rejected.jsonl"),
                                         "--relabel", "--changes", str(changes)])  # the default --drop
    assert exported.exit_code == 0, exported.output
    logged = [json.loads(line) for line in changes.read_text().splitlines()]
    # Every row the audit flagged only for a label fix (warning or above) is relabelled and kept,
    # multi-word labels included; the rest of the flagged rows are dropped.
    dropping = [f for f in findings if f["severity"] in ("error", "warning")]
    fix_only = {f["row"] for f in dropping} - {f["row"] for f in dropping
                                               if f["kind"] not in RELABEL_KINDS or f["suggested_value"] is None}
    assert fix_only and {change["row"] for change in logged} == fix_only
    assert f"relabeled {len(fix_only):,} ({len(fix_only):,} kept instead of dropped" in exported.output
    assert any(" " in change["to"] for change in logged)
    # Most flipped labels come back: with ~10 rows per intent the audit also questions some clean
    # rows, but the flips it catches it restores to the true, multi-word label.
    flipped = [row for row in truth if row % 20 == 7]
    restored = [c for c in logged if c["row"] in flipped and c["to"] == truth[c["row"]]]
    assert len(restored) >= 0.5 * len(flipped)
    assert any(" " in c["to"] for c in restored)
    rejected = {json.loads(line)["row"] for line in (tmp_path / "rejected.jsonl").read_text().splitlines()}
    kept_rows = [row for row in range(len(truth)) if row not in rejected]
    kept = dict(zip(kept_rows, (json.loads(line) for line in clean.read_text().splitlines()), strict=True))
    for change in logged:
        assert kept[change["row"]]["label"] == change["to"]


def _hand_made_audit(tmp_path: Path) -> tuple[Path, Path]:
    """Five rows with multi-word labels and an audit of them: a label fix alone (row 1), a label
    fix beside a duplicate (row 2), a label conflict with no fix (row 3), a duplicate (row 4)."""
    from dataaudit.checks.base import FINDING_SCHEMA
    from dataaudit.io.load import load
    from dataaudit.result import AuditResult

    data = tmp_path / "d.jsonl"
    texts = ["my card has not come yet", "where is my new card", "top up did not work", "my transfer is pending",
             "top up did not work"]
    labels = ["card arrival", "lost card", "can't \"top up\"", "card arrival", "can't \"top up\""]
    data.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in zip(texts, labels)))
    dataset = load(data)

    def finding(row, check, kind, suggested_value=None, severity="warning"):
        return {"row": row, "check": check, "kind": kind, "score": 0.1, "severity": severity, "cluster": 0,
                "group": None, "reason": f"{kind} here", "suggestion": None, "suggested_value": suggested_value}

    findings = pl.DataFrame([
        finding(1, "conflict", "label_noise", "card arrival"),
        finding(1, "format", "odd", severity="info"),  # below --min-severity: does not drop
        finding(2, "conflict", "label_noise", "top up failed"), finding(2, "duplicate", "near"),
        finding(3, "conflict", "label_conflict", severity="error"),
        finding(4, "duplicate", "exact"),
    ], schema=FINDING_SCHEMA)
    AuditResult(rows=dataset.frame.select("row", "prompt", "response", "label"), findings=findings,
                clusters=pl.DataFrame(), summary={"dataset": {"path": str(data), "fingerprint": dataset.fingerprint()},
                                                  "checks": {"conflict": {}, "duplicate": {}, "format": {}}},
                ).save(tmp_path / "audit")
    return data, tmp_path / "audit"


def test_relabel_keeps_what_it_fixes_with_the_default_drop(tmp_path):
    from click.testing import CliRunner

    data, audit_dir = _hand_made_audit(tmp_path)
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    exported = CliRunner().invoke(main, ["export", str(data), "--audit", str(audit_dir), "--out", str(clean),
                                         "--rejected", str(rejected), "--relabel"])
    assert exported.exit_code == 0, exported.output
    assert "kept 2 records" in exported.output and "3 dropped" in exported.output
    assert "relabeled 1 (1 kept instead of dropped for their label)" in exported.output
    assert f"changes → {clean}.changes.jsonl" in exported.output
    kept = [json.loads(line) for line in clean.read_text().splitlines()]
    assert kept == [{"text": "my card has not come yet", "label": "card arrival"},
                    {"text": "where is my new card", "label": "card arrival"}]
    assert sorted(json.loads(line)["row"] for line in rejected.read_text().splitlines()) == [2, 3, 4]
    [change] = [json.loads(line) for line in Path(f"{clean}.changes.jsonl").read_text().splitlines()]
    assert (change["row"], change["from"], change["to"]) == (1, "lost card", "card arrival")


def test_an_explicit_drop_of_the_check_still_drops_what_relabel_could_fix(tmp_path):
    from click.testing import CliRunner

    data, audit_dir = _hand_made_audit(tmp_path)
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    exported = CliRunner().invoke(main, ["export", str(data), "--audit", str(audit_dir), "--out", str(clean),
                                         "--rejected", str(rejected), "--relabel", "--drop", "conflict"])
    assert exported.exit_code == 0, exported.output
    assert "relabeled 0 (0 kept instead of dropped for their label)" in exported.output
    assert sorted(json.loads(line)["row"] for line in rejected.read_text().splitlines()) == [1, 2, 3]
    assert not Path(f"{clean}.changes.jsonl").exists()


def test_a_label_with_quotes_and_an_apostrophe_is_applied_verbatim(tmp_path):
    from dataaudit.checks.base import FINDING_SCHEMA
    from dataaudit.export import export_clean
    from dataaudit.io.load import load
    from dataaudit.result import AuditResult

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "top up did not work", "label": "card arrival"}\n'
                    '{"text": "my card has not come", "label": "card arrival"}\n', encoding="utf-8")
    dataset = load(data)
    label = RENAMED["top_up_failed"]
    findings = pl.DataFrame([{"row": 0, "check": "conflict", "kind": "label_noise", "score": 0.1, "severity": "warning",
                              "cluster": 0, "group": None, "reason": "label looks wrong", "suggestion": label,
                              "suggested_value": label}], schema=FINDING_SCHEMA)
    result = AuditResult(rows=pl.DataFrame({"row": [0, 1]}), findings=findings, clusters=pl.DataFrame(),
                         summary={"dataset": {"path": str(data), "fingerprint": dataset.fingerprint()}})
    summary = export_clean(dataset, result, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl", drop=[],
                           relabel=True)
    assert summary.relabeled == 1
    assert json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])["label"] == label
