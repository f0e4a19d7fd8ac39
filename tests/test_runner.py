"""The audit runner: shared artefacts, isolated checks, assembled frames, save/load."""

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from dataaudit.checks.base import Check, Finding, result_from_findings
from dataaudit.embed import HashingEmbedder
from dataaudit.result import AuditResult
from dataaudit.runner import audit
from tests.conftest import FixedClusterPipeline, make_context, make_dataset

PROMPTS = ["how do I reset my password", "How do I reset my password?", "what is 2 plus 2", "what is 3 plus 5",
           "write a haiku about rain", "write a haiku about snow"]
RESPONSES = ["Click 'forgot password'.", "Click 'forgot password'.", "#### 4", "The answer is 8.", "Rain falls...", "Snow falls..."]


class Exploding(Check):
    """A check that always fails: the audit must go on without it."""

    name = "exploding"

    def __init__(self, *, message: str = "boom"):
        self.message = message

    def run(self, ctx):
        raise RuntimeError(self.message)


class FlagFirst(Check):
    """Flags row 0, to test how findings are assembled."""

    name = "flag_first"
    needs = frozenset({"knn_prompt"})

    def __init__(self):
        pass

    def run(self, ctx):
        return result_from_findings(self.name, ctx, [Finding(row=0, score=0.1, severity="error", reason="first")])


def run(checks, **kwargs):
    dataset = make_dataset(PROMPTS, RESPONSES)
    return audit(dataset, checks=checks, embedder=HashingEmbedder(),
                 cluster_pipeline=FixedClusterPipeline(labels=[0, 0, 1, 1, 2, -1]), **kwargs)


def test_failing_check_is_recorded_and_others_still_run():
    result = run([Exploding(), FlagFirst()])
    assert result.summary["checks"]["exploding"]["status"] == "failed"
    assert "RuntimeError: boom" in result.summary["checks"]["exploding"]["error"]
    assert result.summary["checks"]["flag_first"]["status"] == "ok"
    assert result.findings.get_column("row").to_list() == [0]
    assert result.findings.row(0, named=True)["cluster"] == 0
    assert result.rows.get_column("is_flag_first_issue").to_list() == [True] + [False] * 5
    assert result.summary["issues_by_severity"] == {"error": 1, "warning": 0, "info": 0}


def test_rows_have_the_documented_columns():
    result = run([])
    for column in ("row", "cluster", "nearest_cluster", "x", "y", "prompt", "response"):
        assert column in result.rows.columns
    assert result.rows.get_column("nearest_cluster").to_list() == [0, 0, 1, 1, 2, 0]
    assert set(result.clusters.columns) >= {"cluster", "size", "label", "representatives", "stability"}


def test_builtin_checks_all_run_on_a_tiny_dataset():
    result = run(["duplicate", "conflict", "format", "quality", "outlier"])
    statuses = {name: info["status"] for name, info in result.summary["checks"].items()}
    assert statuses == dict.fromkeys(["duplicate", "conflict", "format", "quality", "outlier"], "ok")
    for name in statuses:
        scores = result.rows.get_column(f"{name}_score")
        assert scores.min() >= 0 and scores.max() <= 1
        assert result.rows.get_column(f"is_{name}_issue").dtype == pl.Boolean
    assert result.rows.filter(pl.col("row") == 1).get_column("is_duplicate_issue").item()


def test_precomputed_embeddings_are_used():
    dataset = make_dataset(PROMPTS, RESPONSES)
    vectors = np.eye(len(PROMPTS), 8, dtype=np.float32)

    class Refuses:
        model_id = "refuses"

        def embed(self, texts, *, progress=None):
            raise AssertionError("should not embed")

    result = audit(dataset, checks=[], embedder=Refuses(), embeddings={"prompt": vectors},
                   cluster_pipeline=FixedClusterPipeline())
    assert result.summary["embedder"] == "refuses"


def test_unknown_check_and_bad_params_are_usage_errors():
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="unknown check 'nope'"):
        run(["nope"])
    with pytest.raises(UsageError, match="bad parameters for check 'duplicate'"):
        run({"duplicate": {"no_such_param": 1}})


def test_save_and_load_round_trip(tmp_path):
    result = run([FlagFirst()])
    result.save(tmp_path / "out")
    for name in ("rows.parquet", "clusters.parquet", "findings.jsonl", "summary.json"):
        assert (tmp_path / "out" / name).exists()
    finding = json.loads((tmp_path / "out" / "findings.jsonl").read_text().splitlines()[0])
    assert set(finding) == {"row", "check", "kind", "score", "severity", "cluster", "group", "reason", "suggestion",
                            "suggested_value"}
    loaded = AuditResult.load(tmp_path / "out")
    assert loaded.rows.equals(result.rows)
    assert loaded.findings.equals(result.findings)
    assert loaded.summary["dataset"] == result.summary["dataset"]
    assert loaded.issues("flag_first").get_column("prompt").to_list() == [PROMPTS[0]]
    assert "dataaudit.AuditResult" in loaded._repr_html_()


def test_context_computes_each_artefact_once():
    calls = []

    class Counting(HashingEmbedder):
        def embed(self, texts, *, progress=None):
            calls.append(len(texts))
            return super().embed(texts)

    ctx = make_context(make_dataset(PROMPTS, RESPONSES), embedder=Counting())
    ctx.knn("prompt"), ctx.knn("pair"), ctx.knn("prompt"), ctx.clustering, ctx.embeddings("pair")
    assert calls == [len(PROMPTS), len(PROMPTS)]
    assert np.allclose(np.linalg.norm(ctx.embeddings("pair"), axis=1), 1.0)


def test_import_is_light():
    code = (
        "import sys, dataaudit, dataaudit.cli; "
        "heavy = [m for m in ('torch', 'umap', 'hdbscan', 'sentence_transformers', 'sklearn', 'polars') if m in sys.modules]; "
        "print(heavy)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_audit_function_survives_importing_the_runner_module():
    import dataaudit
    import dataaudit.runner  # noqa: F401 — must not shadow dataaudit.audit

    assert callable(dataaudit.audit) and dataaudit.audit is dataaudit.runner.audit
