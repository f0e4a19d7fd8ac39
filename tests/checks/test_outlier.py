"""Outlier check: prompts far from their neighbours relative to local density."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.checks.outlier import OutlierCheck
from dataaudit.context import AuditContext
from dataaudit.embed import HashingEmbedder
from dataaudit.engine.local import LocalEngine
from tests.conftest import FixedClusterPipeline, make_context, make_dataset

DIM = 16


def context_for(vectors: np.ndarray, *, knn_k: int = 10) -> AuditContext:
    n = len(vectors)
    dataset = make_dataset([f"prompt {i}" for i in range(n)], [f"response {i}" for i in range(n)])
    return AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(),
                        knn_k=knn_k, embeddings={"prompt": vectors})


def blob(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    points = centre + spread * rng.standard_normal((n, DIM))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM)
    return v / np.linalg.norm(v)


def three_blobs_and_a_stray(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blobs = [blob(rng, unit(rng), 40, 0.05) for _ in range(3)]
    return np.vstack(blobs + [unit(rng)[None, :]]).astype(np.float32)


def test_isolated_prompt_is_flagged():
    result = OutlierCheck().run(context_for(three_blobs_and_a_stray()))
    assert result.findings.get_column("row").to_list() == [120]
    finding = result.findings.row(0, named=True)
    assert finding["reason"].startswith("an isolated prompt: mean distance to its 10 nearest prompts is ")
    assert "× that of its neighbours" in finding["reason"] and "dataset median" in finding["reason"]
    assert finding["severity"] == "warning"  # far beyond warning_ratio
    assert finding["suggestion"].startswith("Review it")
    scores = result.rows.get_column("outlier_score").to_numpy()
    assert scores[120] == scores.min() and scores[120] < 0.5


def test_sparse_region_is_judged_by_its_own_density():
    rng = np.random.default_rng(1)
    dense = blob(rng, unit(rng), 60, 0.03)
    sparse = blob(rng, unit(rng), 30, 0.4)
    result = OutlierCheck().run(context_for(np.vstack([dense, sparse]).astype(np.float32)))
    ratio = result.rows.get_column("outlier_ratio").to_numpy()
    assert np.median(ratio[60:]) < 1.3  # far from the dense blob in absolute terms, ordinary locally
    assert result.findings.height <= 1


def test_exact_duplicates_do_not_make_outliers():
    rng = np.random.default_rng(2)
    base = blob(rng, unit(rng), 10, 0.05)
    vectors = np.repeat(base, 5, axis=0).astype(np.float32)
    result = OutlierCheck().run(context_for(vectors))
    assert result.findings.height == 0
    assert np.isfinite(result.rows.get_column("outlier_ratio").to_numpy()).all()


def test_flags_are_capped_by_max_share():
    rng = np.random.default_rng(3)
    dense = blob(rng, unit(rng), 100, 0.02)
    strays = np.vstack([unit(rng) for _ in range(5)])
    result = OutlierCheck(max_share=0.02).run(context_for(np.vstack([dense, strays]).astype(np.float32)))
    assert result.findings.height == 3  # ceil(0.02 × 105)
    assert result.summary["candidates"] >= 3 and result.summary["budget"] == 3
    assert set(result.findings.get_column("row").to_list()) <= set(range(100, 105))


def test_mild_outlier_is_info():
    rng = np.random.default_rng(4)
    centre = unit(rng)
    dense = blob(rng, centre, 80, 0.05)
    nearby = blob(rng, centre, 1, 0.25)
    result = OutlierCheck(min_ratio=1.2, min_z=2.0, warning_ratio=100.0).run(context_for(np.vstack([dense, nearby]).astype(np.float32)))
    assert 80 in result.findings.get_column("row").to_list()
    assert set(result.findings.get_column("severity").to_list()) == {"info"}


def test_identical_rows():
    vectors = np.tile(np.eye(DIM, dtype=np.float32)[0], (12, 1))
    result = OutlierCheck().run(context_for(vectors))
    assert result.findings.height == 0
    assert result.rows.get_column("outlier_score").to_list() == [1.0] * 12


@pytest.mark.parametrize("n", [0, 1, 2, 4])
def test_degenerate_sizes(n):
    ctx = make_context(make_dataset([f"prompt {i}" for i in range(n)], ["r"] * n))
    result = OutlierCheck().run(ctx)
    assert result.rows.height == n and result.findings.height == 0
    assert "skipped" in result.summary


def test_prompt_only_data_works():
    ctx = make_context(make_dataset([f"how do I reset my password {i}" for i in range(20)] + ["zebra quantum lasagna"]))
    result = OutlierCheck().run(ctx)
    assert result.rows.height == 21
    assert result.rows.columns == ["row", "outlier_score", "is_outlier_issue", "outlier_ratio"]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=5, max_value=60), st.integers(min_value=0, max_value=10_000))
def test_scores_in_range_and_flags_bounded(n, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    check = OutlierCheck()
    result = check.run(context_for(vectors))
    scores = result.rows.get_column("outlier_score").to_numpy()
    assert ((scores >= 0.0) & (scores <= 1.0)).all()
    assert result.findings.height <= max(1, int(np.ceil(check.max_share * n)))


def test_a_small_far_group_is_flagged_though_its_members_are_each_others_neighbours():
    rng = np.random.default_rng(3)
    bulk = np.vstack([blob(rng, unit(rng), 600, 0.05) for _ in range(3)])
    foreign = blob(rng, unit(rng), 15, 0.35)  # 15 > k: each one's nearest neighbours are the others
    vectors = np.vstack([bulk, foreign]).astype(np.float32)

    result = OutlierCheck().run(context_for(vectors))

    ratio = result.rows.get_column("outlier_ratio").to_numpy()
    assert np.median(ratio[1800:]) < 2.0  # invisible to the local rule
    reasons = dict(result.findings.select("row", "reason").iter_rows())
    assert set(range(1800, 1815)) <= set(reasons)
    assert all(reasons[row].startswith("far from the rest of the data") for row in range(1800, 1815))
    assert sum("a small group unlike the rest" in reasons[row] for row in range(1800, 1815)) >= 12
    assert sum(row < 1800 for row in reasons) <= 4  # a few blob tails, within the 1% budget
    foreign_severity = result.findings.filter(result.findings["row"] >= 1800).get_column("severity").to_list()
    assert foreign_severity == ["warning"] * 15
