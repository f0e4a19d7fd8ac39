"""Fitting on a sample and placing the other rows through the kNN graph."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score

from dataaudit.cluster import ClusterPipeline, NoReducer, PCAMapper
from dataaudit.cluster.assign import sample_rows, spread_from_sample
from dataaudit.neighbors import build_knn

from .conftest import make_blobs
from .test_pipeline import check_contract


def chain(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row i's neighbours are i-1 and i+1 (ends repeat their one neighbour)."""
    left = np.maximum(np.arange(n) - 1, 0)
    right = np.minimum(np.arange(n) + 1, n - 1)
    left[0] = 1
    right[-1] = n - 2
    return np.stack([left, right], axis=1), np.ones((n, 2), dtype=np.float32)


def test_the_sample_spreads_hop_by_hop_along_the_graph():
    neighbours, similarities = chain(7)
    sample = np.array([0, 6])
    placement = spread_from_sample(sample, np.array([0, 1]), np.array([[0.0], [6.0]], dtype=np.float32),
                                   np.array([[0, 0], [6, 6]], dtype=np.float32), neighbours=neighbours,
                                   similarities=similarities, embeddings=np.eye(7, dtype=np.float32))
    assert placement.rounds.tolist() == [0, 1, 2, 3, 2, 1, 0]
    assert placement.labels.tolist()[:3] == [0, 0, 0] and placement.labels.tolist()[4:] == [1, 1, 1]
    assert placement.points[:, 0].tolist() == [0.0, 0.0, 0.0, 3.0, 6.0, 6.0, 6.0]  # the middle row averages both sides
    assert placement.labels[3] == 0  # a tied vote goes to the lower id


def test_the_vote_is_weighted_by_similarity_and_noise_can_win():
    neighbours = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    similarities = np.array([[0.9, 0.2, 0.2]] * 4, dtype=np.float32)
    placement = spread_from_sample(np.array([1, 2, 3]), np.array([-1, 4, 4]), np.zeros((3, 2), dtype=np.float32),
                                   np.zeros((3, 2), dtype=np.float32), neighbours=neighbours,
                                   similarities=similarities, embeddings=np.eye(4, dtype=np.float32))
    assert placement.labels[0] == -1  # 0.9 for noise beats 0.2 + 0.2 for cluster 4


def test_rows_the_graph_never_reaches_take_the_most_similar_centroid():
    embeddings = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    neighbours = np.array([[1], [0], [3], [2]])  # rows 2 and 3 only see each other
    placement = spread_from_sample(np.array([0, 1]), np.array([0, 1]), np.array([[1.0], [2.0]], dtype=np.float32),
                                   np.array([[1, 1], [2, 2]], dtype=np.float32), neighbours=neighbours,
                                   similarities=np.ones((4, 1), dtype=np.float32), embeddings=embeddings)
    assert placement.labels.tolist() == [0, 1, 0, 1]
    assert placement.rounds.tolist() == [0, 0, -1, -1]
    assert placement.xy[2].tolist() == [1.0, 1.0] and placement.points[3].tolist() == [2.0]


def test_sample_rows_is_seeded_sorted_and_capped():
    assert sample_rows(10, 50, seed=0).tolist() == list(range(10))
    first = sample_rows(1000, 100, seed=3)
    assert np.array_equal(first, sample_rows(1000, 100, seed=3)) and np.all(np.diff(first) > 0) and len(first) == 100


@pytest.mark.parametrize("max_fit_rows", [120, 200])
def test_a_pipeline_fitted_on_a_sample_finds_the_same_topics(max_fit_rows):
    embeddings, texts, topics = make_blobs(per_topic=150, seed=1)
    pipeline = ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper(), min_cluster_size=15, stability_resamples=3,
                               max_fit_rows=max_fit_rows)

    result = pipeline.fit(embeddings, texts, knn=build_knn(embeddings, k=10))

    check_contract(result, len(texts))
    assert result.params["fitted_rows"] == max_fit_rows and result.params["placed_by_centroid"] == 0
    # The chosen minimum (15 of 600 rows) is scaled to the sample HDBSCAN sees.
    assert result.params["fit_min_cluster_size"] == round(15 * max_fit_rows / len(texts))
    assert result.clusters.height == 4
    assert adjusted_mutual_info_score(topics, result.nearest_cluster) > 0.95
    full = ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper(), min_cluster_size=15, stability_resamples=3).fit(
        embeddings, texts)
    assert full.params["fitted_rows"] == len(texts)
    assert adjusted_mutual_info_score(full.nearest_cluster, result.nearest_cluster) > 0.95
    # Keywords come from the fitted sample only, and still name each topic.
    assert sorted(map(sorted, result.clusters.get_column("keywords").to_list())) == \
        sorted(map(sorted, full.clusters.get_column("keywords").to_list()))


def test_a_derived_minimum_cluster_size_is_derived_for_the_sample():
    """√n / 5 of a million rows would ask a 5% sample for clusters of 4,000 rows; the sample gets
    the size derived for its own row count instead."""
    from dataaudit.cluster.clusterers import derive_min_cluster_size

    embeddings, texts, _ = make_blobs(per_topic=400, seed=2)
    pipeline = ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper(), stability_resamples=2, max_fit_rows=900)
    result = pipeline.fit(embeddings, texts, knn=build_knn(embeddings, k=10))
    assert result.params["min_cluster_size"] == derive_min_cluster_size(1600)
    assert result.params["fit_min_cluster_size"] == derive_min_cluster_size(900)
    assert result.clusters.height == 4
