"""``export --relabel`` end to end on labels people write: spaces, apostrophes and quotes.

The suggestion is read from the finding's ``suggested_value``, never parsed back out of the
prose, so a label like ``card arrival`` or ``can't "top up"`` is applied exactly as written.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

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
                                         "--rejected", str(tmp_path / "rejected.jsonl"), "--drop", "",
                                         "--relabel", "--changes", str(changes)])
    assert exported.exit_code == 0, exported.output
    logged = [json.loads(line) for line in changes.read_text().splitlines()]
    # Every label fix the audit suggested at warning or above was applied, multi-word ones included.
    assert len(logged) == len({f["row"] for f in label_fixes if f["severity"] in ("error", "warning")})
    assert any(" " in change["to"] for change in logged)
    # Most flipped labels come back: with ~10 rows per intent the audit also questions some clean
    # rows, but the flips it catches it restores to the true, multi-word label.
    flipped = [row for row in truth if row % 20 == 7]
    restored = [c for c in logged if c["row"] in flipped and c["to"] == truth[c["row"]]]
    assert len(restored) >= 0.5 * len(flipped)
    assert any(" " in c["to"] for c in restored)
    kept = [json.loads(line) for line in clean.read_text().splitlines()]
    for change in logged:
        assert kept[change["row"]]["label"] == change["to"]


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
