"""The CLI through click's CliRunner: parsing, rendering, exit codes."""

import json

import pytest
from click.testing import CliRunner

from dataaudit import __version__
from dataaudit.cli import main
from tests.conftest import REALDATA


@pytest.fixture
def runner():
    return CliRunner()


def test_version(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_inspect_shows_format_counts_and_labels(runner, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "hi there", "intent": "greet"}\n{"text": "bye", "intent": "leave"}\n{oops\n')
    result = runner.invoke(main, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    [profile] = json.loads(result.output)
    assert (profile["format"], profile["records"], profile["bad_lines"]) == ("text_label", 2, 1)
    assert profile["labels"] == {"greet": 1, "leave": 1}
    assert profile["first_bad_lines"][0]["line"] == 3
    table = runner.invoke(main, ["inspect", str(path)])
    assert table.exit_code == 0 and "text_label" in table.output and "greet" in table.output


def test_inspect_unknown_format_is_a_clear_error(runner, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"foo": 1}\n')
    result = runner.invoke(main, ["inspect", str(path)])
    assert result.exit_code == 2
    assert "error:" in result.output and "unknown format" in result.output and "Traceback" not in result.output


def test_inspect_with_explicit_fields(runner, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "why", "a": "because"}\n')
    result = runner.invoke(main, ["inspect", str(path), "--prompt-field", "q", "--response-field", "a", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["format"] == "fields"


def test_export_partitions_and_reports_counts(runner, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n{bad\n{"prompt": "b"}\r\n')
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    result = runner.invoke(main, ["export", str(path), "--out", str(clean), "--rejected", str(rejected)])
    assert result.exit_code == 0, result.output
    assert "kept 2 records" in result.output and "1 unparseable" in result.output
    assert clean.read_bytes() == b'{"prompt": "a"}\n{"prompt": "b"}\r\n'
    assert json.loads(rejected.read_text())["line"] == 2


def test_export_refuses_to_overwrite_input(runner, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a"}\n')
    result = runner.invoke(main, ["export", str(path), "--out", str(path), "--rejected", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2 and "refusing to overwrite" in result.output
    assert path.read_text() == '{"prompt": "a"}\n'


def test_missing_file_exit_code(runner, tmp_path):
    result = runner.invoke(main, ["inspect", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_inspect_every_realdata_file(runner):
    if not REALDATA.exists():
        pytest.skip("../shared/realdata not available")
    expected = {
        "alpaca_eval_805.jsonl": ("alpaca", 805), "banking77.jsonl": ("text_label", 13083),
        "clinc150_oos.jsonl": ("text_label", 23700), "code_alpaca_2k.jsonl": ("alpaca", 2017),
        "gpteacher_codegen.jsonl": ("alpaca", 4535), "gpteacher_roleplay.jsonl": ("alpaca", 1923),
        "gsm8k.jsonl": ("question_answer", 8792), "mt_bench_questions.jsonl": ("turns", 80),
        "self_instruct_seed_tasks.jsonl": ("alpaca", 175), "trec_qc.jsonl": ("text_label", 5952),
    }
    paths = [str(REALDATA / name) for name in sorted(expected)]
    result = runner.invoke(main, ["inspect", *paths, "--json"])
    assert result.exit_code == 0, result.output
    found = {profile["path"].rsplit("/", 1)[-1]: (profile["format"], profile["records"]) for profile in json.loads(result.output)}
    assert found == expected


@pytest.mark.slow
def test_finetune_confirms_on_a_real_encoder_and_extends_the_report(runner, tmp_path):
    """End to end: audit (fast fakes) → `dataaudit finetune` with the real MiniLM encoder."""
    from dataaudit.embed import HashingEmbedder
    from dataaudit.io.load import load
    from dataaudit.runner import audit
    from tests.conftest import FixedClusterPipeline
    from tests.finetune.test_encoder import INTENTS

    data = tmp_path / "intents.jsonl"
    records = [{"text": text, "label": label} for label, texts in INTENTS.items() for text in texts]
    records.append({"text": "I lost my card last night", "label": "exchange_rate"})  # a flipped label
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    clusters = [i // 6 for i in range(18)] + [2]
    result = audit(load(data), checks=["duplicate", "conflict"], embedder=HashingEmbedder(),
                   cluster_pipeline=FixedClusterPipeline(labels=clusters))
    result.save(tmp_path / "audit")
    outcome = runner.invoke(main, ["finetune", str(data), "--audit", str(tmp_path / "audit"), "--epochs", "2",
                                   "--out", str(tmp_path / "ft"), "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    summary = json.loads((tmp_path / "ft" / "finetune" / "summary.json").read_text())
    assert summary["backend"]["backend"] == "encoder"
    assert summary["backend"]["trained_on"] in {"cpu", "cuda"}  # which budget the run got
    assert summary["rows"]["train"] + summary["rows"]["heldout"] == 19
    assert [p["epoch"] for p in summary["forgetting"]] == [0, 1, 2]
    assert {r["finding"] for r in summary["confirmation"]} >= {"brittleness", "forgetting", "fine-tune vs few-shot"}
    assert (tmp_path / "ft" / "finetune" / "dynamics.parquet").exists()
    html = (tmp_path / "ft" / "report.html").read_text()
    assert "Fine-tune confirmation" in html and "fine-tune vs few-shot" in html


def test_finetune_with_a_missing_audit_is_a_clear_error(runner, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hi", "label": "a"}\n')
    outcome = runner.invoke(main, ["finetune", str(data), "--audit", str(tmp_path / "nope")])
    assert outcome.exit_code == 2
    assert "not an audit directory" in outcome.output


# -- sharded input, CI output and the pre-commit gate ---------------------------------------

HOOK_BOOT = """
import sys
import dataaudit.cluster.pipeline, dataaudit.runner
from dataaudit.cluster.mappers import PCAMapper
from dataaudit.cluster.reducers import NoReducer
from dataaudit.embed import HashingEmbedder
pipeline = dataaudit.cluster.pipeline.ClusterPipeline
dataaudit.runner.default_embedder = lambda **_: HashingEmbedder()
dataaudit.cluster.pipeline.ClusterPipeline = lambda **kw: pipeline(reducer=NoReducer(), mapper=PCAMapper(), **kw)
from dataaudit.cli import main
main(sys.argv[1:], prog_name="dataaudit")
"""


def _shards(folder, records, cuts):
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *cuts, len(records)]
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        (folder / f"part-{index}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[start:end]))


def test_audit_of_a_folder_exports_per_file(hashing_cli, tmp_path):
    from tests.test_baseline import RECORDS

    _shards(tmp_path / "data", RECORDS, [10, 20])
    audit = hashing_cli.invoke(main, ["audit", str(tmp_path / "data"), "--out", str(tmp_path / "audit"), "--no-cache"])
    assert audit.exit_code == 0, audit.output
    export = hashing_cli.invoke(main, ["export", str(tmp_path / "data"), "--audit", str(tmp_path / "audit"),
                                       "--out-dir", str(tmp_path / "clean"), "--rejected", str(tmp_path / "rej.jsonl")])
    assert export.exit_code == 0, export.output
    assert sorted(path.name for path in (tmp_path / "clean").iterdir()) == ["part-0.jsonl", "part-1.jsonl", "part-2.jsonl"]
    [rejected] = [json.loads(line) for line in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert (rejected["source_file"], rejected["line"]) == (str(tmp_path / "data" / "part-2.jsonl"), 5)
    neither = hashing_cli.invoke(main, ["export", str(tmp_path / "data"), "--rejected", str(tmp_path / "r.jsonl")])
    assert neither.exit_code == 2 and "--out-dir" in neither.output


def test_export_out_dir_annotates_and_converts_parquet_shards(hashing_cli, tmp_path):
    import polars as pl

    from tests.test_baseline import RECORDS

    (tmp_path / "data").mkdir()
    for index, (start, end) in enumerate([(0, 12), (12, len(RECORDS))]):
        pl.DataFrame(RECORDS[start:end]).write_parquet(tmp_path / "data" / f"train-{index}.parquet")
    audit = hashing_cli.invoke(main, ["audit", str(tmp_path / "data"), "--out", str(tmp_path / "audit"), "--no-cache",
                                      "--quiet"])
    assert audit.exit_code == 0, audit.output
    common = ["export", str(tmp_path / "data"), "--audit", str(tmp_path / "audit")]
    annotated = hashing_cli.invoke(main, [*common, "--annotate", "--out-dir", str(tmp_path / "annotated"),
                                          "--rejected", str(tmp_path / "r1.jsonl")])
    assert annotated.exit_code == 0, annotated.output
    tables = [pl.read_parquet(tmp_path / "annotated" / f"train-{index}.parquet") for index in (0, 1)]
    assert [table.height for table in tables] == [12, len(RECORDS) - 12]
    assert tables[0].columns == ["prompt", "completion", "_dataaudit"]
    converted = hashing_cli.invoke(main, [*common, "--to", "alpaca", "--out-dir", str(tmp_path / "alpaca"),
                                          "--rejected", str(tmp_path / "r2.jsonl")])
    assert converted.exit_code == 0, converted.output
    rejected = [json.loads(line) for line in (tmp_path / "r2.jsonl").read_text().splitlines()]
    kept = pl.concat([pl.read_parquet(tmp_path / "alpaca" / f"train-{index}.parquet") for index in (0, 1)])
    assert kept.columns == ["instruction", "input", "output"] and kept.height + len(rejected) == len(RECORDS)


def test_production_shards_keep_their_file_and_line_in_coverage_parquet(hashing_cli, tmp_path):
    import polars as pl

    from tests.test_baseline import RECORDS

    _shards(tmp_path / "data", RECORDS, [12])
    prompts = [{"prompt": f"How do I get a refund for order {number}?"} for number in range(7)]
    _shards(tmp_path / "production", prompts, [3])
    audit = hashing_cli.invoke(main, ["audit", str(tmp_path / "data"), "--production", str(tmp_path / "production"),
                                      "--out", str(tmp_path / "audit"), "--no-cache", "--quiet"])
    assert audit.exit_code == 0, audit.output
    coverage = pl.read_parquet(tmp_path / "audit" / "coverage.parquet")
    files = [str(tmp_path / "production" / f"part-{index}.jsonl") for index in (0, 0, 0, 1, 1, 1, 1)]
    assert coverage.select("row", "source_file", "line").rows() == list(zip(range(7), files, [1, 2, 3, 1, 2, 3, 4]))
    rows = pl.read_parquet(tmp_path / "audit" / "rows.parquet")
    assert {"source_file", "line"} <= set(rows.columns)  # the same columns as training rows


def test_coverage_alpha_sets_the_rate_the_coverage_calibrates_for(hashing_cli, tmp_path):
    from tests.test_baseline import RECORDS

    _shards(tmp_path / "data", RECORDS, [12])
    _shards(tmp_path / "production", [{"prompt": f"How do I get a refund for order {n}?"} for n in range(7)], [3])
    audit = hashing_cli.invoke(main, ["audit", str(tmp_path / "data"), "--production", str(tmp_path / "production"),
                                      "--coverage-alpha", "0.2", "--out", str(tmp_path / "audit"), "--no-cache", "--quiet"])
    assert audit.exit_code == 0, audit.output
    coverage = json.loads((tmp_path / "audit" / "summary.json").read_text())["coverage"]
    assert coverage["params"]["alpha"] == 0.2 and coverage["threshold"]["alpha"] == 0.2
    bad = hashing_cli.invoke(main, ["audit", str(tmp_path / "data"), "--coverage-alpha", "1", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "coverage-alpha" in bad.output


def test_a_run_off_a_terminal_logs_progress_lines_and_no_blank_lines(hashing_cli, tmp_path):
    from tests.test_baseline import RECORDS

    _shards(tmp_path / "data", RECORDS, [])
    result = hashing_cli.invoke(main, ["audit", str(tmp_path / "data"), "--out", str(tmp_path / "audit"), "--no-cache",
                                       "--verbose"])
    assert result.exit_code == 0, result.output
    for stream in (result.stdout, result.stderr):
        assert stream and "" not in stream.rstrip("\n").split("\n") and "\r" not in stream
    assert "Embedding (hashing): done, 25/25" in result.stderr
    assert "Stage timings" in result.stdout and "check_duplicate" in result.stdout


def test_no_color_is_honoured(hashing_cli, tmp_path, monkeypatch):
    from tests.test_baseline import RECORDS

    _shards(tmp_path / "data", RECORDS, [])
    monkeypatch.setenv("FORCE_COLOR", "1")
    args = ["audit", str(tmp_path / "data"), "--out", str(tmp_path / "audit"), "--no-cache"]
    assert "\x1b[32m" in hashing_cli.invoke(main, args).stdout  # forced colour: "ok" is green
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[32m" not in hashing_cli.invoke(main, args).stdout


def test_pre_commit_hook_runs_as_pre_commit_would(hashing_cli, tmp_path):
    """The hook's entry and args, run as pre-commit runs them (a subprocess, filenames as given).

    ``dataaudit`` in the entry is replaced by this interpreter running the CLI with the hashing
    embedder (as the ``hashing_cli`` fixture does in-process), so the test loads no model.
    """
    import os
    import shlex
    import subprocess
    import sys

    yaml = pytest.importorskip("yaml")
    from tests.conftest import REPO
    from tests.test_baseline import RECORDS

    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["pass_filenames"] is False and hook["language"] == "python"
    entry = shlex.split(hook["entry"])
    assert entry[0] == "dataaudit"
    data = tmp_path / "data"
    _shards(data, RECORDS, [12])
    baseline = hashing_cli.invoke(main, ["audit", str(data), "--out", str(tmp_path / "baseline"), "--no-cache"])
    assert baseline.exit_code == 0, baseline.output
    args = [str(data), "--baseline", str(tmp_path / "baseline"), "--out", str(tmp_path / "latest"), "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run_hook():
        command = [sys.executable, "-c", HOOK_BOOT, *entry[1:], *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

    unchanged = run_hook()
    assert unchanged.returncode == 0, unchanged.stderr
    with (data / "part-1.jsonl").open("a") as handle:
        handle.write(json.dumps({"prompt": RECORDS[3]["prompt"].rstrip(".") + "!", "completion": RECORDS[3]["completion"]}) + "\n")
    appended = run_hook()
    assert appended.returncode == 1, appended.stderr
    assert (appended.stdout, appended.stderr) == ("", "")  # --quiet: the exit code says it
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert summary["baseline"]["new_rows"] == [len(RECORDS)]
