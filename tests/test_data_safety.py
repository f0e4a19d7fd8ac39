"""No data loss: the input is never modified, every export path keeps the partition, a killed
writer leaves the old or the new file, and audits sharing one embedding cache stay correct.

Already covered elsewhere: the JSONL partition under hypothesis (tests/io/test_writers.py), the
partition for every --drop choice (tests/test_export.py), atomic writes on exceptions
(tests/io/test_atomic.py), corrupt shards and a SIGKILLed cache writer (tests/embed/test_cache.py).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks import BUILTIN_CHECKS
from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.cli import main
from dataaudit.embed import HashingEmbedder
from dataaudit.export import ANNOTATION_KEY, export_clean
from dataaudit.io.load import load
from dataaudit.result import AuditResult
from tests.conftest import REPO

RECORDS = [
    {"text": "where is my card", "label": "card_arrival"},
    {"text": "where is my card??", "label": "card_arrival"},
    {"text": "my card has not arrived", "label": "lost_card"},
    {"text": "how do I top up", "label": "top_up"},
    {"text": "top up failed", "label": "top_up"},
    {"text": "caf\u00e9 \u2028 \U0001f600", "label": "other"},
]
#: JSONL extras: a malformed line, a blank line and a record of the wrong shape.
JSONL_EXTRAS = ["{broken", "", '{"text": 5, "label": "x"}']


def write_container(tmp_path, container: str):
    """The same records in each container (JSONL with bad and blank lines mixed in)."""
    path = tmp_path / f"data.{container}"
    if container in ("jsonl", "jsonl.gz"):
        lines = [json.dumps(r, ensure_ascii=False) for r in RECORDS[:3]] + JSONL_EXTRAS + [json.dumps(r, ensure_ascii=False) for r in RECORDS[3:]]
        data = ("\r\n".join(lines) + "\r\n").encode()
        path.write_bytes(gzip.compress(data, mtime=0) if container.endswith("gz") else data)
    elif container == "json":
        path.write_text(json.dumps(RECORDS, indent=2, ensure_ascii=False))
    else:
        frame = pl.DataFrame(RECORDS)
        frame.write_csv(path) if container == "csv" else frame.write_parquet(path)
    return path


def fake_result(dataset, findings) -> AuditResult:
    frame = pl.DataFrame(findings, schema=FINDING_SCHEMA) if findings else pl.DataFrame(schema=FINDING_SCHEMA)
    return AuditResult(rows=pl.DataFrame({"row": dataset.frame.get_column("row")}), findings=frame, clusters=pl.DataFrame(),
                       summary={"dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint()}})


def finding(row, check, severity, *, suggestion=None, reason="r", kind="issue", suggested_value=None):
    return {"row": row, "check": check, "kind": kind, "score": 0.1, "severity": severity, "cluster": 0, "group": None,
            "reason": reason, "suggestion": suggestion, "suggested_value": suggested_value}


CONTAINERS = ["jsonl", "jsonl.gz", "json", "csv", "parquet"]
MODES = ["plain", "annotate", "openai", "alpaca", "sharegpt", "relabel"]
SEVERITY = st.sampled_from(["error", "warning", "info"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(container=st.sampled_from(CONTAINERS), mode=st.sampled_from(MODES), min_severity=SEVERITY,
       drop=st.sets(st.sampled_from(BUILTIN_CHECKS)),
       flagged=st.lists(st.tuples(st.integers(0, 8), st.sampled_from(BUILTIN_CHECKS), SEVERITY), max_size=8))
def test_every_export_path_keeps_the_partition(tmp_path, container, mode, min_severity, drop, flagged):
    path = write_container(tmp_path, container)
    before = path.read_bytes()
    dataset = load(path, skip_bad_lines=True)
    rows = set(dataset.frame.get_column("row").to_list())
    findings = [finding(row, check, severity) for row, check, severity in flagged if row in rows]
    relabel_row = min(rows)
    if mode == "relabel":
        findings.append(finding(relabel_row, "conflict", "error", suggestion="'renamed'", reason="label 'x' disagrees",
                                kind="label_noise", suggested_value="renamed"))
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    summary = export_clean(dataset, fake_result(dataset, findings), clean=clean, rejected=rejected, drop=sorted(drop),
                           min_severity=min_severity, annotate=mode == "annotate",
                           to=mode if mode in ("openai", "alpaca", "sharegpt") else None, relabel=mode == "relabel")
    kept = clean.read_bytes().splitlines()
    entries = [json.loads(line) for line in rejected.read_bytes().splitlines()]
    # Every input entry (good, bad or blank) is in exactly one of the two files, in input order.
    assert len(kept) + len(entries) == dataset.n_entries + len(dataset.blank_lines)
    assert (summary.kept, summary.dropped + summary.bad + summary.blank) == (len(kept), len(entries))
    assert [e["line"] for e in entries] == sorted(e["line"] for e in entries) and all(e["reasons"] for e in entries)
    dropped_rows = {e["row"] for e in entries if e["row"] in rows}
    kept_rows = [r for r in dataset.frame.get_column("row").to_list() if r not in dropped_rows]
    assert len(kept_rows) == len(kept)
    if mode == "annotate":
        assert not dropped_rows  # annotate keeps every record
    records = [json.loads(line) for line in kept]
    prompts = dict(zip(dataset.frame.get_column("row").to_list(), dataset.prompts))
    if mode == "plain" and container in ("jsonl", "jsonl.gz"):
        original = {r: raw for r, raw in zip(dataset.frame.get_column("row").to_list(), dataset.frame.get_column("record").to_list())}
        assert [line.removesuffix(b"\r") for line in kept] == [original[r] for r in kept_rows]  # byte for byte
    elif mode in ("plain", "annotate", "relabel"):
        assert [record["text"] for record in records] == [prompts[r] for r in kept_rows]
    elif mode == "openai":
        assert [record["messages"][0]["content"] for record in records] == [prompts[r] for r in kept_rows]
    elif mode == "alpaca":
        assert [record["instruction"] for record in records] == [prompts[r] for r in kept_rows]
    else:
        assert [record["conversations"][0]["value"] for record in records] == [prompts[r] for r in kept_rows]
    if mode == "annotate":
        assert all(ANNOTATION_KEY in record for record in records)
    if mode == "relabel" and relabel_row in kept_rows:
        assert records[kept_rows.index(relabel_row)]["label"] == "renamed"
    assert path.read_bytes() == before


# -- the input file is never modified ---------------------------------------------------------------
@pytest.mark.parametrize("container", ["jsonl", "json", "csv"])
def test_no_command_modifies_the_input(hashing_cli, tmp_path, container):
    data = write_container(tmp_path, container)
    (tmp_path / "p").mkdir()
    production = write_container(tmp_path / "p", "jsonl")
    data.chmod(0o444)  # a write would fail loudly; the stat below catches a replace-by-rename too
    watched = {path: (path.read_bytes(), os.stat(path)) for path in (data, production)}
    out = tmp_path / "audit"
    commands = [
        ["inspect", str(data)],
        ["audit", str(data), "--production", str(production), "--out", str(out), "--skip-bad-lines", "-q"],
        ["export", str(data), "--out", str(tmp_path / "c0.jsonl"), "--rejected", str(tmp_path / "r0.jsonl")],
        ["export", str(data), "--audit", str(out), "--out", str(tmp_path / "c1.jsonl"), "--rejected", str(tmp_path / "r1.jsonl"),
         "--min-severity", "info"],
        ["export", str(data), "--audit", str(out), "--out", str(tmp_path / "c2.jsonl"), "--rejected", str(tmp_path / "r2.jsonl"), "--annotate"],
        ["export", str(data), "--audit", str(out), "--out", str(tmp_path / "c3.jsonl"), "--rejected", str(tmp_path / "r3.jsonl"), "--to", "openai"],
        ["export", str(data), "--audit", str(out), "--out", str(tmp_path / "c4.jsonl"), "--rejected", str(tmp_path / "r4.jsonl"), "--relabel"],
        ["report", str(out)],
    ]
    for command in commands:
        result = hashing_cli.invoke(main, command)
        assert result.exit_code == 0, (command, result.output)
    for path, (content, stat) in watched.items():
        now = os.stat(path)
        assert path.read_bytes() == content
        assert (now.st_ino, now.st_mtime_ns, now.st_mode) == (stat.st_ino, stat.st_mtime_ns, stat.st_mode)


# -- a killed writer leaves the old or the new file ---------------------------------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_export_killed_mid_write_leaves_old_or_new_outputs(tmp_path):
    """A writer alternates between two exports of different data into the same two files and is
    killed with SIGKILL at arbitrary moments: each file is always one whole version."""
    versions = {}
    for name, count in (("a", 20_000), ("b", 30_000)):
        source = tmp_path / f"{name}.jsonl"
        source.write_text("".join(json.dumps({"prompt": f"{name} {i}"}) + "\n" for i in range(count)) + "{bad\n")
        versions[name] = source
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    writer = textwrap.dedent(f"""
        import sys
        from dataaudit.io.load import load
        from dataaudit.io.writers import write_partition
        sources = [load(p, skip_bad_lines=True) for p in ({str(versions['a'])!r}, {str(versions['b'])!r})]
        i = 0
        while True:
            write_partition(sources[i % 2], clean={str(clean)!r}, rejected={str(rejected)!r})
            i += 1
            print(i, flush=True)
    """)
    expected_clean = {source.read_bytes().removesuffix(b"{bad\n") for source in versions.values()}
    for delay in (0.02, 0.11):
        process = subprocess.Popen([sys.executable, "-c", writer], cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(2):  # both versions written at least once
                assert process.stdout.readline(), "writer died"
            time.sleep(delay)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            process.stdout.close()
        assert clean.read_bytes() in expected_clean
        assert [json.loads(line)["record"] for line in rejected.read_bytes().splitlines()] == ["{bad"]
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert all(name.startswith((".clean.jsonl.", ".rejected.jsonl.")) for name in leftovers)  # only temp files, never a half output


# -- two audits sharing one embedding cache ------------------------------------------------------------
def test_two_audits_sharing_one_cache_directory_at_once(tmp_path):
    """Two processes embed overlapping texts in many small batches (so shards are merged while the
    other reads) and then audit with the shared cache: results match an uncached audit, and the
    cache ends up serving every text correctly."""
    cache = tmp_path / "cache"
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {i % 17} about topic {i % 5}", "completion": f"answer {i % 3}"}) + "\n"
                            for i in range(60)))
    worker = textwrap.dedent(f"""
        import sys
        from dataaudit.embed import CachingEmbedder, EmbeddingCache, HashingEmbedder
        from dataaudit.runner import audit
        from tests.conftest import FixedClusterPipeline
        me = int(sys.argv[1])
        embedder = CachingEmbedder(embedder=HashingEmbedder(dim=64), cache=EmbeddingCache(directory={str(cache)!r}))
        for batch in range(45):
            embedder.embed([f"shared text {{batch}} {{j}}" for j in range(5)] + [f"own text {{me}} {{batch}}"])
        result = audit({str(data)!r}, embedder=embedder, cluster_pipeline=FixedClusterPipeline(), checks=["duplicate", "conflict"])
        result.rows.write_parquet({str(tmp_path)!r} + f"/rows-{{me}}.parquet")
    """)
    workers = [subprocess.Popen([sys.executable, "-c", worker, str(me)], cwd=REPO) for me in (0, 1)]
    assert [process.wait(timeout=120) for process in workers] == [0, 0]

    from dataaudit.embed import CachingEmbedder, EmbeddingCache
    from dataaudit.runner import audit
    from tests.conftest import FixedClusterPipeline

    uncached = audit(str(data), embedder=HashingEmbedder(dim=64), cluster_pipeline=FixedClusterPipeline(), checks=["duplicate", "conflict"])
    for me in (0, 1):
        assert pl.read_parquet(tmp_path / f"rows-{me}.parquet").equals(uncached.rows)
    texts = [f"shared text {b} {j}" for b in range(45) for j in range(5)] + [f"own text {me} {b}" for me in (0, 1) for b in range(45)]

    class Counting(HashingEmbedder):
        seen: list[str] = []

        def embed(self, texts, *, progress=None):
            self.seen.extend(texts)
            return super().embed(texts)

    counter = Counting(dim=64)
    vectors = CachingEmbedder(embedder=counter, cache=EmbeddingCache(directory=cache)).embed(texts)
    assert counter.seen == []
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=64).embed(texts))
    assert len(list(cache.glob("*/shard-*.npy"))) < 60  # of ~96 shards written, merging removed most and lost nothing


# -- a saved audit reads back exactly ----------------------------------------------------------------
def test_a_saved_audit_reads_back_text_with_unicode_line_breaks(tmp_path):
    """findings.jsonl keeps U+2028, U+0085 and \\x1c raw (ensure_ascii=False); reading it back
    must split on newlines only, or a finding quoting such text is lost."""
    text = "a\u2028b\u2029c\x85d\x1ce\x1df\x1eg\x0bh\x0ci\r\nj"
    findings = pl.DataFrame([finding(0, "quality", "error", suggestion=text, reason=text)], schema=FINDING_SCHEMA)
    result = AuditResult(rows=pl.DataFrame({"row": [0], "prompt": [text]}), findings=findings, clusters=pl.DataFrame(),
                         summary={"note": text})
    loaded = AuditResult.load(result.save(tmp_path / "audit"))
    assert loaded.findings.equals(result.findings) and loaded.rows.equals(result.rows) and loaded.summary == {"note": text}
