"""The real UMAP path on a few hundred points (numba compiles on first use: seconds)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score

from dataaudit.cluster import ClusterPipeline

pytestmark = pytest.mark.slow


def test_umap_pipeline_recovers_blobs_and_is_reproducible(blobs):
    embeddings, texts, topics = blobs
    pipeline = ClusterPipeline(seed=3, stability_resamples=3)

    first = pipeline.fit(embeddings, texts)
    second = pipeline.fit(embeddings, texts)

    assert first.params["fallback"] is None
    assert first.clusters.height == 4
    assert adjusted_mutual_info_score(topics, first.labels) > 0.9
    assert (first.nearest_cluster >= 0).all()
    assert np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.xy, second.xy)
    assert first.xy.dtype == np.float32 and np.ptp(first.xy, axis=0).min() > 0


def test_a_precomputed_knn_graph_gives_the_same_result(blobs):
    from dataaudit.neighbors import build_knn

    embeddings, texts, _ = blobs
    pipeline = ClusterPipeline(seed=3, stability_resamples=3)

    without = pipeline.fit(embeddings, texts)
    with_graph = pipeline.fit(embeddings, texts, knn=build_knn(embeddings, k=30))

    assert np.array_equal(without.labels, with_graph.labels)
    assert np.array_equal(without.xy, with_graph.xy)


@pytest.mark.parametrize("n_rows", [2, 4, 7])
def test_umap_stages_used_directly_survive_tiny_inputs(n_rows, blobs):
    from dataaudit.cluster import UMAPMapper, UMAPReducer

    embeddings = blobs[0][:: 300 // n_rows][:n_rows]

    reduced = UMAPReducer().fit_transform(embeddings)
    xy = UMAPMapper().fit_transform(embeddings, reduced=reduced)

    assert reduced.shape == (n_rows, 5) and np.isfinite(reduced).all()
    assert xy.shape == (n_rows, 2) and np.isfinite(xy).all()
