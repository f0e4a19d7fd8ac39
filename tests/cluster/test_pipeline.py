import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_mutual_info_score

from dataaudit.cluster import CLUSTERS_SCHEMA, Clustering, ClusterPipeline, HDBSCANClusterer, NoReducer, PCAMapper
from dataaudit.cluster.pipeline import _numbered_by_size
from dataaudit.errors import UsageError


def fast_pipeline(**overrides) -> ClusterPipeline:
    settings = {"reducer": NoReducer(), "mapper": PCAMapper(), "min_cluster_size": 20, "stability_resamples": 3}
    return ClusterPipeline(**{**settings, **overrides})


def check_contract(result: Clustering, n_rows: int) -> None:
    assert result.labels.shape == (n_rows,) and result.labels.dtype == np.int64
    assert result.nearest_cluster.shape == (n_rows,) and result.nearest_cluster.dtype == np.int64
    assert result.xy.shape == (n_rows, 2) and result.xy.dtype == np.float32
    assert np.isfinite(result.xy).all()
    assert result.clusters.schema == pl.Schema(CLUSTERS_SCHEMA)
    ids = result.clusters["cluster"].to_list()
    assert ids == list(range(len(ids)))
    assert set(result.labels[result.labels >= 0].tolist()) == set(ids)
    assert result.clusters["size"].to_list() == [int((result.labels == c).sum()) for c in ids]
    assert result.clusters["size"].to_list() == sorted(result.clusters["size"].to_list(), reverse=True)
    assert all(label for label in result.clusters["label"].to_list())
    assert result.clusters["stability"].is_between(0.0, 1.0).all()
    for cluster, rows in zip(ids, result.clusters["representatives"].to_list()):
        assert 1 <= len(rows) <= 5 and all(result.labels[r] == cluster for r in rows)
    clustered = result.labels >= 0
    assert (result.nearest_cluster[clustered] == result.labels[clustered]).all()
    if ids:
        assert (result.nearest_cluster >= 0).all()
    json.dumps(result.params)


def test_blobs_are_recovered_and_described(blobs, topic_words):
    embeddings, texts, topics = blobs

    result = fast_pipeline().fit(embeddings, texts)

    check_contract(result, len(texts))
    assert result.clusters.height == 4
    assert adjusted_mutual_info_score(topics, result.labels) > 0.9
    assert adjusted_mutual_info_score(topics, result.nearest_cluster) == pytest.approx(1.0)
    assert result.noise_share < 0.1
    assert (result.clusters["stability"] > 0.9).all()
    # Each cluster's keywords come from its own topic's vocabulary.
    for cluster, keywords in result.clusters.select("cluster", "keywords").iter_rows():
        topic = np.bincount(topics[result.labels == cluster]).argmax()
        assert keywords[:3] and set(keywords[:3]) <= set(topic_words[topic])
    assert result.params["min_cluster_size"] == 20 and result.params["fallback"] is None


def test_noise_rows_get_a_nearest_cluster(blobs):
    embeddings, texts, _ = blobs
    rng = np.random.default_rng(3)
    stray = rng.normal(size=(15, embeddings.shape[1])).astype(np.float32)
    stray /= np.linalg.norm(stray, axis=1, keepdims=True)

    result = fast_pipeline().fit(np.vstack([embeddings, stray]), texts + ["lost words"] * 15)

    check_contract(result, len(texts) + 15)
    assert (result.labels == -1).any()
    assert (result.nearest_cluster >= 0).all()


def test_same_seed_gives_identical_results(blobs):
    embeddings, texts, _ = blobs

    first = fast_pipeline(seed=7).fit(embeddings, texts)
    second = fast_pipeline(seed=7).fit(embeddings, texts)

    assert np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.xy, second.xy)
    assert first.clusters.equals(second.clusters)


@pytest.mark.parametrize("n_rows", [0, 1, 2, 5, 9])
def test_tiny_inputs_become_one_cluster_without_running_umap(n_rows, blobs):
    embeddings, texts, _ = blobs

    # Default stages: UMAP would fail on so few rows, so it must not run at all.
    result = ClusterPipeline().fit(embeddings[:n_rows], texts[:n_rows])

    check_contract(result, n_rows)
    if n_rows == 0:
        assert result.clusters.height == 0 and result.params["fallback"] == "empty"
    else:
        assert result.labels.tolist() == [0] * n_rows
        assert result.clusters["stability"].to_list() == [1.0]
        assert result.params["fallback"] == "too_few_distinct_rows"


def test_identical_rows_are_one_cluster_at_the_origin_of_the_map():
    embeddings = np.tile(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), (200, 1))

    result = ClusterPipeline().fit(embeddings, ["same prompt"] * 200)

    check_contract(result, 200)
    assert result.clusters.height == 1 and (result.labels == 0).all()
    assert not result.xy.any()
    assert result.clusters["keywords"][0].to_list() == ["prompt"]


def test_no_density_structure_falls_back_to_one_cluster():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(60, 8)).astype(np.float32)

    result = fast_pipeline(min_cluster_size=25).fit(embeddings, ["lone words"] * 60)

    check_contract(result, 60)
    assert result.params["fallback"] == "no_density_clusters"
    assert (result.labels == 0).all()


def test_min_cluster_size_is_derived_when_not_given(blobs):
    embeddings, texts, _ = blobs

    result = fast_pipeline(min_cluster_size=None).fit(embeddings, texts)

    assert result.params["min_cluster_size"] == 5 and result.params["min_cluster_size_derived"]


def test_conflicting_min_cluster_sizes_and_mismatched_inputs_are_rejected(blobs):
    embeddings, texts, _ = blobs
    with pytest.raises(ValueError, match="set twice"):
        fast_pipeline(clusterer=HDBSCANClusterer(min_cluster_size=10)).fit(embeddings, texts)
    with pytest.raises(ValueError, match="do not match"):
        fast_pipeline().fit(embeddings, texts[:-1])
    with pytest.raises(UsageError, match="stability_resamples=0 is not valid"):  # at construction, before any work
        fast_pipeline(stability_resamples=0)


def test_clusters_are_numbered_by_decreasing_size():
    labels = np.array([4, 4, -1, 9, 9, 9, 2, 4, 9])

    assert _numbered_by_size(labels).tolist() == [1, 1, -1, 0, 0, 0, 2, 1, 0]


class _FixedReducer:
    """Pretends to reduce: returns 2-D points that hold the blob structure."""

    def __init__(self, *, points: np.ndarray):
        self.points = points

    def fit_transform(self, embeddings, *, knn=None, seed=0):
        return self.points

    def get_params(self):
        return {"name": "fixed"}


class _RecordingClusterer(HDBSCANClusterer):
    def __init__(self):
        super().__init__()
        self.widths: list[int] = []

    def fit_predict(self, points, *, min_cluster_size):
        self.widths.append(points.shape[1])
        return super().fit_predict(points, min_cluster_size=min_cluster_size)


def test_clustering_and_its_stability_run_on_the_reduced_space_only(blobs):
    embeddings, texts, topics = blobs
    reduced = (np.eye(2)[topics % 2] * 5 + 10 * (topics >= 2)[:, None]).astype(np.float32)
    reduced += np.random.default_rng(0).normal(scale=0.1, size=reduced.shape).astype(np.float32)
    clusterer = _RecordingClusterer()

    result = fast_pipeline(reducer=_FixedReducer(points=reduced), clusterer=clusterer).fit(embeddings, texts)

    assert clusterer.widths == [2] * (1 + 3)  # one clustering, three stability resamples
    assert result.clusters.height == 4
    assert result.params["reducer"] == {"name": "fixed"}


@given(
    st.integers(0, 40).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=3 * n, max_size=3 * n),
        )
    )
)
@settings(max_examples=25, deadline=None)
def test_any_small_input_keeps_the_contract(case):
    n_rows, values = case
    embeddings = np.asarray(values, dtype=np.float32).reshape(n_rows, 3)

    result = fast_pipeline(min_cluster_size=None).fit(embeddings, [f"text {i}" for i in range(n_rows)])

    check_contract(result, n_rows)
    if n_rows:
        assert result.clusters.height >= 1


@given(st.integers(1, 40), st.integers(0, 6), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_distinct_rows_counts_what_sorting_the_rows_counts(rows, dim, seed):
    """The fingerprint count equals the exact count: rows are drawn from a small pool, so many repeat."""
    from dataaudit.cluster.pipeline import _distinct_rows

    rng = np.random.default_rng(seed)
    pool = rng.integers(-2, 3, size=(5, dim)).astype(np.float32)
    embeddings = pool[rng.integers(0, len(pool), size=rows)]
    exact = len({row.tobytes() for row in embeddings}) if dim else 1
    assert _distinct_rows(embeddings, block_rows=7) == exact
