"""Degenerate datasets: the audit finishes, its output is sensible, and it says what it could not compute.

0, 1, 2 and 5 rows; all rows identical; all rows unique noise; one giant cluster; a single label
class; empty texts; a production sample that shares nothing with training, or has no rows. The
real cluster pipeline runs with UMAP swapped for the identity and PCA (fast; UMAP itself is
skipped below 2 x min_cluster_size distinct rows anyway); the CLI tests go end to end.
"""

from __future__ import annotations

import json
import random

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks import BUILTIN_CHECKS
from dataaudit.cli import main
from dataaudit.cluster.mappers import PCAMapper
from dataaudit.cluster.pipeline import ClusterPipeline
from dataaudit.cluster.reducers import NoReducer
from dataaudit.embed import HashingEmbedder
from dataaudit.report.html import render_html
from dataaudit.result import AuditResult
from dataaudit.runner import audit
from tests.conftest import FixedClusterPipeline, make_dataset

_rng = random.Random(0)


def noise(n: int, *, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789") -> list[str]:
    return ["".join(_rng.choice(alphabet + " ") for _ in range(40)) for _ in range(n)]


def qa(n):
    return make_dataset([f"question {i} about cats" for i in range(n)], [f"answer {i}" for i in range(n)])


def labelled(n):
    return make_dataset([f"text {i} about dogs" for i in range(n)], labels=[f"l{i % 2}" for i in range(n)])


def prompts_only(n):
    return make_dataset([f"prompt {i}" for i in range(n)])


CASES = {
    **{f"{n}_rows_{kind.__name__}": (lambda n=n, kind=kind: kind(n)) for n in (0, 1, 2, 5) for kind in (qa, labelled, prompts_only)},
    "identical": lambda: make_dataset(["same prompt"] * 30, ["same answer"] * 30),
    "identical_text_two_labels": lambda: make_dataset(["same text"] * 30, labels=["a"] * 15 + ["b"] * 15),
    "unique_noise": lambda: make_dataset(noise(60), noise(60)),
    "giant_cluster": lambda: make_dataset([f"how do I reset my password please {i % 3}" for i in range(60)], ["Click reset."] * 60),
    "single_class": lambda: make_dataset([f"where is my card number {i}" for i in range(40)], labels=["card"] * 40),
    "empty_strings": lambda: make_dataset([""] * 10, [""] * 10),
    "whitespace_only": lambda: make_dataset([" \n\t"] * 5 + ["x"] * 5, [" "] * 10),
}
#: Production samples: none, one sharing nothing with any training set (another alphabet), an empty one.
PRODUCTIONS = {
    "none": lambda: None,
    "disjoint": lambda: make_dataset(noise(30, alphabet="αβγδεζηθικλμνξοπρστυφχψω")),
    "empty": lambda: make_dataset([]),
}


def fast_pipeline() -> ClusterPipeline:
    return ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper())


def run(dataset, production=None) -> AuditResult:
    return audit(dataset, production=production, embedder=HashingEmbedder(), cluster_pipeline=fast_pipeline(), knn_k=10)


@pytest.mark.parametrize("case", sorted(CASES))
def test_audit_finishes_with_sensible_output(tmp_path, case):
    dataset = CASES[case]()
    result = run(dataset, PRODUCTIONS["disjoint"]())
    n = len(dataset)
    summary = result.summary
    assert {name: info["status"] for name, info in summary["checks"].items()} == dict.fromkeys(BUILTIN_CHECKS, "ok")
    assert result.rows.height == n and result.rows.get_column("row").to_list() == dataset.frame.get_column("row").to_list()
    assert set(result.findings.get_column("row").to_list()) <= set(result.rows.get_column("row").to_list())
    for name in BUILTIN_CHECKS:
        scores = result.rows.get_column(f"{name}_score").drop_nulls()
        assert scores.is_nan().sum() == 0 and (scores.len() == 0 or (scores.min() >= 0 and scores.max() <= 1))
    assert summary["clusters"]["count"] == result.clusters.height and (n == 0) == (result.clusters.height == 0)
    if n:
        assert result.rows.get_column("nearest_cluster").min() >= 0  # every row has a home cluster
    json.dumps(summary, allow_nan=False)  # plain JSON, no NaN
    result.save(tmp_path / "out")
    loaded = AuditResult.load(tmp_path / "out")
    assert loaded.rows.height == n and loaded.findings.height == result.findings.height
    assert 'id="overview"' in render_html(loaded)


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_rows_say_what_was_skipped(n):
    result = run(qa(n), PRODUCTIONS["disjoint"]())
    checks = result.summary["checks"]
    for name in ("duplicate", "conflict"):
        assert checks[name]["skipped"] == "fewer than two rows"
    assert checks["outlier"]["skipped"] == "fewer than 5 rows"
    assert result.summary["parameters"]["clustering"]["fallback"] == ("empty" if n == 0 else "too_few_distinct_rows")
    not_computed = result.summary["coverage"]["not_computed"]
    assert "gap_score" in not_computed and "drift" in not_computed and "evaluation_gap" in not_computed
    if n == 0:
        assert checks["quality"]["skipped"].startswith("no responses")
        assert result.summary["coverage"]["gap_share"] == 1.0  # nothing is covered by nothing


@pytest.mark.parametrize("case", ["0_rows_qa", "1_rows_labelled", "identical"])
def test_without_production_there_is_no_coverage_section(case):
    result = run(CASES[case]())
    assert "coverage" not in result.summary and result.coverage.height == 0
    assert 'id="overview"' in render_html(result)


def test_empty_production_is_reported_not_computed():
    result = run(qa(5), PRODUCTIONS["empty"]())
    assert result.summary["coverage"]["not_computed"] == {"everything": "production has no rows"}
    assert result.coverage.height == 0


def test_production_sharing_nothing_is_all_gap():
    result = run(CASES["giant_cluster"](), PRODUCTIONS["disjoint"]())
    coverage = result.summary["coverage"]
    assert coverage["gap_share"] == 1.0 and coverage["not_computed"] == {}
    assert result.coverage.get_column("is_gap").all()
    assert coverage["drift"]["auc"] > 0.9


def test_identical_rows_are_one_duplicate_group_and_one_cluster():
    result = run(CASES["identical"]())
    flagged = result.findings.filter(pl.col("check") == "duplicate")
    assert flagged.height == 29 and 0 not in flagged.get_column("row").to_list()  # the first copy is kept
    assert result.rows.get_column("duplicate_group").unique().to_list() == [0]
    assert result.summary["parameters"]["clustering"]["fallback"] == "too_few_distinct_rows"


def test_identical_text_with_two_labels_is_a_conflict():
    result = run(CASES["identical_text_two_labels"]())
    assert result.findings.filter(pl.col("check") == "conflict").height > 0


def test_single_label_class_says_label_noise_was_not_computed():
    result = run(CASES["single_class"]())
    assert "single label class" in result.summary["checks"]["conflict"]["label_noise"]
    assert result.findings.filter(pl.col("check") == "conflict").height == 0


def test_noise_has_no_density_clusters_and_is_one_cluster():
    result = run(CASES["unique_noise"]())
    assert result.summary["parameters"]["clustering"]["fallback"] == "no_density_clusters"
    assert result.clusters.height == 1 and result.findings.filter(pl.col("check") == "duplicate").height == 0


def test_precomputed_zero_vectors_do_not_produce_nan():
    dataset = qa(12)
    zeros = np.zeros((12, 8), dtype=np.float32)
    result = audit(dataset, embedder=HashingEmbedder(), cluster_pipeline=fast_pipeline(), knn_k=5,
                   embeddings={"prompt": zeros, "response": zeros})
    assert all(info["status"] == "ok" for info in result.summary["checks"].values())
    for column in ("x", "y", *(f"{name}_score" for name in BUILTIN_CHECKS)):
        assert result.rows.get_column(column).is_nan().sum() == 0


# -- end to end through the CLI, default pipeline (UMAP where there is structure) ------------------
LINES = {
    "all_bad": ["{broken", "[1, 2]", "not json"],
    "one_row": ['{"prompt": "hello", "completion": "hi"}'],
    "identical": ['{"prompt": "same", "completion": "same"}'] * 12,
    "giant_cluster": [json.dumps({"prompt": f"reset my password please {i % 4}", "completion": "Click reset."}) for i in range(40)],
}


@pytest.mark.parametrize("shape", sorted(LINES))
def test_cli_audit_of_degenerate_files(hashing_cli, tmp_path, shape):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(LINES[shape]) + "\n")
    production = tmp_path / "production.jsonl"
    production.write_text("".join(json.dumps({"text": text}) + "\n" for text in noise(15, alphabet="αβγδεζηθ")))
    out = tmp_path / "out"
    result = hashing_cli.invoke(main, ["audit", str(data), "--production", str(production), "--out", str(out),
                                       "--skip-bad-lines", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["records"] == len(LINES[shape]) - (3 if shape == "all_bad" else 0)
    assert summary["dataset"]["bad_lines"] == (3 if shape == "all_bad" else 0)
    assert (out / "report.html").stat().st_size > 0 and (out / "rows.parquet").exists()
    assert "records" in result.output  # the terminal summary was drawn


# -- hostile text in every field: no check may fail --------------------------------------------------
PIECES = st.sampled_from(list("ab 1.\n\r\t\u2028\u2029\x85\x1c\x0b`'\"()[]{}#*-:;<>|\\") + [
    "```", "```python\n", "def f(", "    ", "1. ", "- ", "#### ", "\u200b", "\ufeff", "\u00e9", "\U0001f600", "[INSERT]",
    "I'm sorry, I can't", "a@example.com", "http://x", "<script>"])
HOSTILE_TEXT = st.lists(PIECES, max_size=10).map("".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT), min_size=1, max_size=8), labelled=st.booleans())
def test_no_check_fails_on_hostile_text(texts, labelled):
    prompts, answers = [prompt for prompt, _ in texts], [answer for _, answer in texts]
    dataset = make_dataset(prompts, labels=answers) if labelled else make_dataset(prompts, answers)
    result = audit(dataset, embedder=HashingEmbedder(dim=32), knn_k=3,
                   cluster_pipeline=FixedClusterPipeline(labels=[index % 2 for index in range(len(texts))]))
    assert {name: info.get("error") for name, info in result.summary["checks"].items() if info["status"] != "ok"} == {}
