"""The data-CI gate cannot pass by accident: a configuration that cannot work fails before
anything is embedded (exit 2), and a check that raises mid-run fails ``--fail-on`` (exit 4)
and is the first thing the terminal and the report show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dataaudit.errors
import dataaudit.runner
from dataaudit.checks.duplicate import DuplicateCheck
from dataaudit.cli import EXIT_CHECK_FAILED, main
from dataaudit.embed import HashingEmbedder
from dataaudit.io.load import from_records
from dataaudit.runner import audit
from tests.test_baseline import RECORDS, write

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "train.jsonl"
CHECKS = "duplicate,format"  # enough to gate on, and quick


class SpyEmbedder(HashingEmbedder):
    """The hashing embedder, counting the texts it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.texts = 0

    def embed(self, texts, **kwargs):
        self.texts += len(texts)
        return super().embed(texts, **kwargs)


@pytest.fixture
def spy(hashing_cli, monkeypatch):
    embedder = SpyEmbedder()
    monkeypatch.setattr(dataaudit.runner, "default_embedder", lambda **_: embedder)
    return embedder


@pytest.fixture
def broken_duplicate(monkeypatch):
    """The duplicate check, made to raise while running."""

    def run(self, ctx):
        raise RuntimeError("boom in the middle")

    monkeypatch.setattr(DuplicateCheck, "run", run)


def test_a_missing_tokenizer_exits_2_before_anything_is_embedded(hashing_cli, spy, tmp_path):
    out = tmp_path / "audit"
    completed = hashing_cli.invoke(main, ["audit", str(SAMPLE), "--out", str(out), "--tokenizer", "/no/such/path",
                                          "--fail-on", "error", "--no-cache"])
    assert completed.exit_code == 2, completed.output
    assert "error:" in completed.output and "/no/such/path" in completed.output and "no such file" in completed.output
    assert "Traceback" not in completed.output
    assert spy.texts == 0 and not out.exists()


def test_a_folder_that_is_no_tokenizer_exits_2_before_anything_is_embedded(hashing_cli, spy, tmp_path):
    empty = tmp_path / "not-a-tokenizer"
    empty.mkdir()
    data = write(tmp_path / "data.jsonl", RECORDS)
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / "audit"), "--checks", "length",
                                          "--tokenizer", str(empty), "--no-cache"])
    assert completed.exit_code == 2, completed.output
    assert "cannot load tokenizer" in completed.output and spy.texts == 0


def test_an_eval_set_with_nothing_to_look_for_exits_2_before_anything_is_embedded(hashing_cli, spy, tmp_path):
    data = write(tmp_path / "data.jsonl", RECORDS)
    answers_only = write(tmp_path / "answers.jsonl", [{"messages": [{"role": "assistant", "content": "Paris."}]}])
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / "audit"), "--checks", "contamination",
                                          "--eval", str(answers_only), "--no-cache"])
    assert completed.exit_code == 2, completed.output
    assert "answers.jsonl" in completed.output and "no user turn" in completed.output and spy.texts == 0


def test_eval_sets_no_selected_check_reads_exit_2_before_anything_is_read(hashing_cli, spy, tmp_path):
    data = write(tmp_path / "data.jsonl", RECORDS)
    items = write(tmp_path / "items.jsonl", [{"messages": [{"role": "user", "content": "What is the capital of France?"}]}])
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / "audit"), "--checks", CHECKS,
                                          "--eval", str(items), "--no-cache"])
    assert completed.exit_code == 2, completed.output
    assert "no selected check reads them" in completed.output and "contamination" in completed.output
    assert spy.texts == 0 and not (tmp_path / "audit").exists()
    with pytest.raises(dataaudit.errors.UsageError, match="contamination"):
        audit(from_records(RECORDS), checks=["format"], eval_sets=[str(items)], embedder=HashingEmbedder())


def test_a_check_that_raises_fails_the_gate_with_its_own_code(hashing_cli, broken_duplicate, tmp_path):
    data = write(tmp_path / "data.jsonl", RECORDS)
    for fail_on in ("error", "warning", "info"):
        out = tmp_path / f"gate-{fail_on}"
        completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), "--checks", CHECKS,
                                              "--fail-on", fail_on, "--no-cache"])
        assert completed.exit_code == EXIT_CHECK_FAILED == 4, completed.output
        assert "1 check(s) failed" in completed.output and "RuntimeError: boom in the middle" in completed.output
    # Without a gate the audit of the other checks is still written, and still exits 0.
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / "plain"), "--checks", CHECKS,
                                          "--no-cache"])
    assert completed.exit_code == 0, completed.output
    summary = json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert summary["checks"]["duplicate"]["status"] == "failed" and summary["checks"]["format"]["status"] == "ok"


def test_the_failed_check_is_the_first_thing_the_terminal_and_the_report_show(hashing_cli, broken_duplicate, tmp_path):
    data = write(tmp_path / "data.jsonl", RECORDS)
    out = tmp_path / "audit"
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), "--checks", CHECKS, "--no-cache"])
    assert completed.exit_code == 0, completed.output
    first = completed.stdout.splitlines()[0]
    assert first.startswith("check duplicate failed: RuntimeError: boom in the middle"), completed.stdout
    table = completed.stdout[completed.stdout.index("Findings"):]
    assert table.index("duplicate") < table.index("format")  # failed first in the table too

    html = (out / "report.html").read_text()
    alert = html.index('id="failed-checks"')
    assert alert < html.index('<nav class="top">') < html.index('id="overview"')
    assert "RuntimeError: boom in the middle" in html[alert:html.index('<nav class="top">')]
    overview = html[html.index('id="overview"'):html.index('id="map"')]
    assert 'class="failed"' in overview and overview.index(">duplicate</a>") < overview.index(">format</a>")


def test_the_failed_check_is_listed_first_even_when_it_runs_last(hashing_cli, monkeypatch, tmp_path):
    from dataaudit.checks.format import FormatCheck

    monkeypatch.setattr(FormatCheck, "run", lambda self, ctx: 1 / 0)
    data = write(tmp_path / "data.jsonl", RECORDS)
    out = tmp_path / "audit"
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), "--checks", CHECKS, "--no-cache"])
    table = completed.stdout[completed.stdout.index("Findings"):]
    assert table.index("format") < table.index("duplicate"), completed.stdout
    overview = (out / "report.html").read_text()
    overview = overview[overview.index('id="overview"'):overview.index('id="map"')]
    assert overview.index(">format</a>") < overview.index(">duplicate</a>")


def test_baseline_gating_obeys_the_same_rule(hashing_cli, monkeypatch, tmp_path):
    data = write(tmp_path / "data.jsonl", RECORDS)
    baseline = tmp_path / "baseline"
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(baseline), "--checks", CHECKS, "--no-cache"])
    assert completed.exit_code == 0, completed.output
    assert json.loads((baseline / "summary.json").read_text())["issues_by_check"]["duplicate"] >= 1

    monkeypatch.setattr(DuplicateCheck, "run", lambda self, ctx: 1 / 0)
    out = tmp_path / "again"
    completed = hashing_cli.invoke(main, ["audit", str(data), "--out", str(out), "--checks", CHECKS, "--no-cache",
                                          "--baseline", str(baseline), "--fail-on", "warning"])
    assert completed.exit_code == EXIT_CHECK_FAILED, completed.output
    # The check looked at nothing: its baseline findings are not "resolved".
    assert json.loads((out / "summary.json").read_text())["baseline"]["resolved"] == 0


def test_the_api_returns_a_failed_status_and_keeps_the_other_checks(broken_duplicate):
    result = audit(from_records(RECORDS), checks=["duplicate", "format"], embedder=HashingEmbedder())
    assert result.status == "failed"
    assert result.failed_checks == {"duplicate": "RuntimeError: boom in the middle"}
    assert result.summary["checks"]["format"]["status"] == "ok"
    clean = audit(from_records(RECORDS), checks=["format"], embedder=HashingEmbedder())
    assert clean.status == "ok" and clean.failed_checks == {}


def test_a_prepare_that_crashes_fails_its_check_only_and_it_never_runs(monkeypatch):
    ran = []
    monkeypatch.setattr(DuplicateCheck, "prepare", lambda self, ctx: {}["no such key"])
    monkeypatch.setattr(DuplicateCheck, "run", lambda self, ctx: ran.append(self))
    result = audit(from_records(RECORDS), checks=["duplicate", "format"], embedder=HashingEmbedder())
    assert result.failed_checks == {"duplicate": "KeyError: 'no such key'"} and ran == []
    assert result.summary["checks"]["format"]["status"] == "ok"


def test_a_usage_error_in_prepare_stops_the_api_before_embedding():
    from dataaudit.errors import UsageError

    embedder = SpyEmbedder()
    with pytest.raises(UsageError, match="no such file"):
        audit(from_records(RECORDS), checks={"length": {"tokenizer": "./missing-tokenizer"}}, embedder=embedder)
    assert embedder.texts == 0
