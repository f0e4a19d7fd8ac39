"""The artefact cache: a re-run of the same data and settings reads the kNN graphs and the
clustering back instead of computing them, and any change computes afresh."""

from __future__ import annotations

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from dataaudit.artefacts import ArtefactCache, artefact_key
from dataaudit.cluster import ClusterPipeline, NoReducer, PCAMapper
from dataaudit.embed import HashingEmbedder
from dataaudit.runner import audit
from tests.conftest import make_dataset

PROMPTS = [f"how do I {verb} my {thing}" for verb in ("reset", "change", "update", "close")
           for thing in ("password", "card", "account", "address", "pin", "email")] * 3
RESPONSES = [f"Go to settings and choose {prompt.split()[3]}." for prompt in PROMPTS]


def _audit(cache, *, seed=0):
    pipeline = ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper(), min_cluster_size=5, stability_resamples=2, seed=seed)
    return audit(make_dataset(PROMPTS, RESPONSES), embedder=HashingEmbedder(dim=64), cluster_pipeline=pipeline,
                 knn_k=10, seed=seed, artefacts=cache)


class _Counting(ArtefactCache):
    """Counts how often each artefact had to be computed."""

    def __init__(self, *, directory):
        super().__init__(directory=directory)
        self.computed = []

    def knn(self, key, compute):
        return super().knn(key, lambda: self.computed.append("knn") or compute())

    def clustering(self, key, compute):
        return super().clustering(key, lambda: self.computed.append("clustering") or compute())


def test_a_rerun_reads_graphs_and_clustering_back_and_finds_the_same(tmp_path):
    first_cache, second_cache = _Counting(directory=tmp_path), _Counting(directory=tmp_path)
    first, second = _audit(first_cache), _audit(second_cache)
    assert sorted(first_cache.computed) == ["clustering", "knn", "knn"]  # prompt and pair graphs
    assert second_cache.computed == []
    assert_frame_equal(first.findings, second.findings)
    assert_frame_equal(first.rows, second.rows)
    assert_frame_equal(first.clusters, second.clusters)


def test_another_seed_computes_afresh(tmp_path):
    _audit(ArtefactCache(directory=tmp_path))
    again = _Counting(directory=tmp_path)
    _audit(again, seed=1)
    assert sorted(again.computed) == ["clustering", "knn", "knn"]


def test_a_damaged_file_is_recomputed_not_trusted(tmp_path):
    _audit(ArtefactCache(directory=tmp_path))
    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"not an npz file")
    again = _Counting(directory=tmp_path)
    result = _audit(again)
    assert sorted(again.computed) == ["clustering", "knn", "knn"] and result.findings.height > 0


@pytest.mark.parametrize("change", [
    lambda v: v[::-1].copy(), lambda v: v.astype(np.float64), lambda v: v.reshape(3, 4), lambda v: v + 1e-7,
])
def test_the_key_changes_with_the_bytes_dtype_shape_and_values(change):
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    assert artefact_key("knn", vectors, 10) != artefact_key("knn", change(vectors), 10)
    assert artefact_key("knn", vectors, 10) == artefact_key("knn", vectors.copy(), 10)
    assert artefact_key(["a", "bc"]) != artefact_key(["ab", "c"])
    assert artefact_key(np.zeros((0, 4), np.float32)) != artefact_key(np.zeros((0, 8), np.float32))


def test_without_a_cache_nothing_is_hashed():
    from dataaudit.artefacts import NULL_ARTEFACTS

    def key():
        raise AssertionError("the key was computed")

    assert NULL_ARTEFACTS.knn(key, lambda: "graph") == "graph"
    assert NULL_ARTEFACTS.clustering(key, lambda: "clustering") == "clustering"
