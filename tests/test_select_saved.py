"""A selection and its verification recorded in the audit directory, read back, and shown by the
report that `select`, `finetune --selection` and `dataaudit report` re-render."""

from __future__ import annotations

import json

import polars as pl
import pytest

from dataaudit.embed import HashingEmbedder
from dataaudit.errors import InputError
from dataaudit.selection import select
from dataaudit.selection.saved import (
    SUMMARY_FILE,
    VERIFICATION_FILE,
    VERIFICATION_SUMMARY_FILE,
    load_selection,
    record_selection,
    selection_digest,
)
from dataaudit.selection.verify import verify_selection
from tests.conftest import make_dataset
from tests.finetune.test_engine import WordVoteBackend, _audit, _data
from tests.test_select import fake_audit, write_data
from tests.test_select_verify import audited_labelled_data


def test_digest_ignores_order_and_repeats_but_not_membership():
    assert selection_digest([3, 1, 2]) == selection_digest([1, 2, 3, 3])
    assert selection_digest([1, 2, 3]) != selection_digest([1, 2, 4])


def test_a_recorded_selection_reads_back_as_it_was(tmp_path):
    path, dataset = write_data(tmp_path)
    production = tmp_path / "production.jsonl"
    production.write_text("".join(json.dumps({"prompt": f"refund payment question {i}"}) + "\n" for i in range(6)))
    selection = select(dataset, fake_audit(dataset), budget="25%", production=production, embedder=HashingEmbedder())
    audit_dir = tmp_path / "audit"
    record_selection(selection, audit_dir)
    assert not (audit_dir / "report.html").exists()  # no report to re-render: none is made
    saved = load_selection(audit_dir)
    assert saved.summary == {**selection.summary, "digest": selection_digest(selection.rows)}
    assert saved.clusters.equals(selection.clusters)
    assert pl.read_parquet(audit_dir / "selection.parquet").equals(selection.table)
    assert saved.comparisons is None and saved.same_selection is None
    assert load_selection(tmp_path / "elsewhere") is None


def test_a_verification_reads_back_and_knows_its_selection(tmp_path):
    prompts, labels, clusters = _data()
    dataset = make_dataset(prompts, labels=labels)
    audit = _audit(dataset, clusters)
    flagged = set(audit.findings.get_column("row").to_list())
    selected = [r for r in range(0, 60, 4) if r not in flagged]
    result = verify_selection(dataset, audit, selected, backend=WordVoteBackend(), epochs=1, seed=0)
    result.save(tmp_path / VERIFICATION_FILE)
    saved = load_selection(tmp_path)
    assert saved.summary is None and saved.comparisons.equals(result.comparisons)
    assert saved.runs.equals(result.runs) and saved.verification_summary == result.summary
    (tmp_path / SUMMARY_FILE).write_text(json.dumps({"summary": {"digest": selection_digest(selected)}, "clusters": []}))
    assert load_selection(tmp_path).same_selection is True
    (tmp_path / SUMMARY_FILE).write_text(json.dumps({"summary": {"digest": selection_digest(selected[1:])},
                                                     "clusters": []}))
    assert load_selection(tmp_path).same_selection is False
    (tmp_path / VERIFICATION_SUMMARY_FILE).unlink()  # as an older `finetune --selection` left it
    assert load_selection(tmp_path).runs is None and load_selection(tmp_path).comparisons.height


@pytest.mark.parametrize(("text", "match"), [("{", "cannot read"), ("[]", "JSON object"),
                                              ('{"summary": 3, "clusters": []}', "summary"),
                                              ('{"summary": {}, "clusters": [{"pool": "many"}]}', "columns")])
def test_a_broken_record_is_refused_naming_its_file(tmp_path, text, match):
    (tmp_path / SUMMARY_FILE).write_text(text)
    with pytest.raises(InputError, match=match) as raised:
        load_selection(tmp_path)
    assert SUMMARY_FILE in str(raised.value)


def test_cli_select_and_finetune_selection_show_in_the_report(tmp_path, hashing_cli, monkeypatch):
    import dataaudit.finetune.engine
    from dataaudit.cli import main

    data, audit_dir = audited_labelled_data(tmp_path, hashing_cli)
    assert 'id="selection"' not in (audit_dir / "report.html").read_text()
    result = hashing_cli.invoke(main, ["select", str(data), "--audit", str(audit_dir), "--budget", "20%",
                                       "--out", str(tmp_path / "subset.jsonl"), "-q"])
    assert result.exit_code == 0, result.output
    saved = json.loads((audit_dir / SUMMARY_FILE).read_text())
    report = (audit_dir / "report.html").read_text()
    assert 'id="selection"' in report and f"<strong>{saved['summary']['budget']}</strong>" in report
    assert "beat random" not in report

    monkeypatch.setattr(dataaudit.finetune.engine, "choose_backend", lambda *args, **kwargs: WordVoteBackend())
    result = hashing_cli.invoke(main, ["finetune", str(data), "--audit", str(audit_dir), "--selection",
                                       str(tmp_path / "subset.jsonl"), "--epochs", "1", "-q"])
    assert result.exit_code == 0, result.output
    report = (audit_dir / "report.html").read_text()
    comparisons = pl.read_parquet(audit_dir / VERIFICATION_FILE)
    assert "beat random" in report and "tested a different selection" not in report
    for verdict in comparisons.get_column("verdict").unique().to_list():
        assert f">{verdict}</span>" in report

    (audit_dir / "report.html").unlink()
    result = hashing_cli.invoke(main, ["report", str(audit_dir)])
    assert result.exit_code == 0, result.output
    again = (audit_dir / "report.html").read_text()
    assert 'id="selection"' in again and "beat random" in again

    result = hashing_cli.invoke(main, ["finetune", str(data), "--audit", str(audit_dir), "--epochs", "1", "-q"])
    assert result.exit_code == 0, result.output  # a plain fine-tune keeps the selection in the report
    both = (audit_dir / "report.html").read_text()
    assert 'id="finetune"' in both and 'id="selection"' in both and "beat random" in both

    (audit_dir / SUMMARY_FILE).write_text("{")
    result = hashing_cli.invoke(main, ["report", str(audit_dir)])
    assert result.exit_code == 2 and SUMMARY_FILE in result.output and "Traceback" not in result.output


def test_rewrite_report_keeps_the_fine_tune_section(tmp_path):
    from bench.report_fixtures import synthetic_result
    from dataaudit.finetune.result import FineTuneResult
    from dataaudit.selection.saved import rewrite_report

    result = synthetic_result(60)
    result.save(tmp_path, report=True)
    assert 'id="finetune"' not in (tmp_path / "report.html").read_text()
    confirmation = [{"finding": "duplicate", "prediction": "p", "measurement": "m", "verdict": "confirmed"}]
    FineTuneResult(summary={"confirmation": confirmation, "backend": "encoder"}, dynamics=pl.DataFrame(),
                   evaluations=pl.DataFrame()).save(tmp_path / "finetune")
    html = rewrite_report(tmp_path).read_text()
    assert 'id="finetune"' in html and '<span class="badge ok">confirmed</span>' in html
    assert 'id="selection"' not in html
