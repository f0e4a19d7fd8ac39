"""Determinism: the same data, options and seed give identical findings, rows.parquet and report.

The first test runs the default cluster pipeline (UMAP, HDBSCAN, bootstrap stability) twice in
one process, because that is where randomness lives; embeddings come from the deterministic
hashing embedder. The second repeats an audit in fresh processes with other hash seeds (the
order of sets and dicts of strings changes between processes) and thread counts; it swaps UMAP
for the identity so that it does not pay numba's compilation twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from dataaudit.cluster.pipeline import ClusterPipeline
from dataaudit.embed import HashingEmbedder
from dataaudit.export import export_clean
from dataaudit.io.load import from_records
from dataaudit.report.html import render_html
from dataaudit.runner import audit
from tests.conftest import REPO

TOPICS = {
    "account": "How do I reset my password on the {} app?",
    "shipping": "Where is my parcel for the {}? It has not arrived.",
    "billing": "Can I get a refund for the {} I ordered?",
    "cooking": "Give me a quick recipe I can cook on a {} trip.",
}
THINGS = ["android", "ios", "web", "tablet", "watch", "tv", "car", "kiosk", "desktop", "mac", "linux", "console", "fridge", "phone"]
OUTPUTS = ("rows.parquet", "clusters.parquet", "findings.jsonl", "coverage.parquet", "gaps.parquet", "cluster_coverage.parquet")


def records() -> list[dict]:
    rows = []
    for index, thing in enumerate(THINGS):
        for label, prompt in TOPICS.items():
            rows.append({"text": prompt.format(thing), "label": label if index % 7 else "other"})
    rows += [rows[0], rows[5]]  # duplicates for the duplicate check to group
    return rows


def run(seed: int = 0, *, umap: bool = True):
    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.reducers import NoReducer

    dataset = from_records(records())
    production = from_records([{"text": f"what is the weather in city {i}"} for i in range(12)] + [{"text": "reset my password"}])
    pipeline = ClusterPipeline(seed=seed) if umap else ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper(), seed=seed)
    return dataset, audit(dataset, production=production, embedder=HashingEmbedder(), cluster_pipeline=pipeline, seed=seed)


def without_timings(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "timings"}


@pytest.mark.slow  # runs UMAP
def test_same_seed_gives_byte_identical_outputs(tmp_path):
    dataset, first = run()
    _, second = run()
    assert first.summary["parameters"]["clustering"]["fallback"] is None  # UMAP and HDBSCAN really ran
    assert first.clusters.height >= 2 and first.findings.height > 0
    first.save(tmp_path / "a")
    second.save(tmp_path / "b")
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert without_timings(first.summary) == without_timings(second.summary)
    second.summary["timings"] = first.summary["timings"]
    assert render_html(first) == render_html(second)
    for result, name in ((first, "a"), (second, "b")):
        export_clean(dataset, result, clean=tmp_path / f"{name}-clean.jsonl", rejected=tmp_path / f"{name}-rejected.jsonl",
                     min_severity="info", annotate=False)
    assert (tmp_path / "a-clean.jsonl").read_bytes() == (tmp_path / "b-clean.jsonl").read_bytes()
    assert (tmp_path / "a-rejected.jsonl").read_bytes() == (tmp_path / "b-rejected.jsonl").read_bytes()


def test_a_fresh_process_with_another_hash_seed_and_one_thread_agrees(tmp_path):
    """The order of sets and dicts of strings changes with the hash seed, which differs between
    processes; BLAS and numba may split work by thread count. Neither may change the output."""
    script = textwrap.dedent("""
        import sys
        from tests.test_determinism import run
        run(umap=False)[1].save(sys.argv[1])
    """)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "fresh")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _, here = run(umap=False)
    here.save(tmp_path / "here")
    assert here.summary["clusters"]["count"] >= 2  # HDBSCAN found structure, so its order matters
    for name in OUTPUTS:
        assert (tmp_path / "fresh" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name
    fresh = json.loads((tmp_path / "fresh" / "summary.json").read_text())
    assert without_timings(fresh) == without_timings(json.loads((tmp_path / "here" / "summary.json").read_text()))
