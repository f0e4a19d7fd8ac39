"""Gap topics: clustering of uncovered rows, growth, representatives, collection rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.coverage.gaps import (
    COLLECT_BASES,
    GapClusterer,
    default_min_cluster_size,
    majority,
    recommended_collection,
    representatives,
)

DIM = 24
NO_TRAINING = np.zeros((0, DIM), dtype=np.float32)


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def topics(sizes: list[int], *, spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tight groups around orthogonal centres; ``truth`` says which group each row is from."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return unit(np.eye(DIM)[truth] + spread * rng.normal(size=(len(truth), DIM))), truth


def cluster(vectors, is_gap=None, training_similarity=0.5, reference=NO_TRAINING, **params) -> np.ndarray:
    n = len(vectors)
    is_gap = np.ones(n, bool) if is_gap is None else np.asarray(is_gap)
    return GapClusterer(**params).fit_predict(vectors, is_gap, np.full(n, training_similarity), reference=reference)


def test_two_uncovered_topics_become_two_clusters_numbered_by_size():
    vectors, truth = topics([4, 9, 1])
    labels = cluster(vectors, min_cluster_size=3)  # the lone row is closer to training (0.5) than to either topic
    assert set(labels[truth == 1]) == {0}  # the larger topic is cluster 0
    assert set(labels[truth == 0]) == {1}
    assert labels[truth == 2][0] == -1  # a lone uncovered row is no topic


def test_a_single_uncovered_topic_is_found_against_the_training_background():
    vectors, truth = topics([6, 20])
    production, training = vectors[truth == 0], vectors[truth == 1]
    assert (cluster(production, reference=training, min_cluster_size=3) == 0).all()
    scattered = unit(np.random.default_rng(1).normal(size=(6, DIM)))
    assert (cluster(scattered, reference=training, min_cluster_size=3) == -1).all()


def test_a_covered_row_joins_a_topic_only_if_closer_to_it_than_to_training():
    vectors, truth = topics([6, 1, 20])
    vectors[6] = unit([vectors[0] + 0.1 * vectors[6]])[0]  # close to topic 0
    production, training = vectors[:7], vectors[7:]
    is_gap = [True] * 6 + [False]
    assert cluster(production, is_gap, training_similarity=0.1, reference=training, min_cluster_size=3)[-1] == 0
    assert cluster(production, is_gap, training_similarity=0.9999, reference=training, min_cluster_size=3)[-1] == -1


def test_growth_seeds_from_clustered_uncovered_rows_only():
    vectors, truth = topics([6, 5, 1, 1, 1])
    vectors[12] = unit([vectors[11] + 0.1 * vectors[12]])[0]  # a covered row next to the lone uncovered row 11
    vectors[13] = unit([vectors[0] + 0.1 * vectors[13]])[0]  # a covered row next to the first topic
    is_gap = np.array([True] * 12 + [False, False])
    clusterer = GapClusterer(min_cluster_size=3)
    labels = clusterer.fit_predict(vectors, is_gap, np.full(14, 0.5), reference=NO_TRAINING)
    assert (labels[:11] >= 0).all() and labels[11] == labels[12] == -1 and labels[13] == labels[0]
    # the topics' rows and the covered row that joined one are gaps; an outlier among the
    # uncovered (row 11, a gap by itself) grows nothing
    assert clusterer.near_gap_.tolist() == [True] * 11 + [False, False, True]


def test_only_joinable_rows_grow_a_topic_and_uncovered_rows_always_may():
    vectors, truth = topics([6, 1, 1, 20])
    vectors[6] = unit([vectors[0] + 0.1 * vectors[6]])[0]  # covered, next to topic 0
    vectors[7] = unit([vectors[0] + 0.1 * vectors[7]])[0]  # covered, next to topic 0
    production, training = vectors[:8], vectors[8:]
    is_gap = np.array([True] * 6 + [False, False])
    joinable = np.array([False] * 6 + [True, False])  # the topic's own rows are marked not joinable
    clusterer = GapClusterer(min_cluster_size=3)
    labels = clusterer.fit_predict(production, is_gap, np.full(8, 0.1), reference=training, joinable=joinable)
    assert (labels[:7] == 0).all() and labels[7] == -1
    assert clusterer.near_gap_.tolist() == [True] * 7 + [False]


def test_scattered_small_themes_are_not_lumped_into_one_topic():
    """Many loose themes of three rows around one direction: HDBSCAN's default selection keeps
    the blob (79 of 90 rows in one "topic" here), leaf selection the themes."""
    rng = np.random.default_rng(0)
    themes = unit(np.eye(DIM)[0] + 0.4 * rng.normal(size=(30, DIM)))
    vectors = unit(np.repeat(themes, 3, axis=0) + 0.25 * rng.normal(size=(90, DIM)))
    everything = np.ones(90, bool)

    def largest(selection: str) -> int:
        labels = GapClusterer(min_cluster_size=3, cluster_selection=selection).fit_predict(
            vectors, everything, np.full(90, 0.99), reference=NO_TRAINING)
        return int(np.bincount(labels[labels >= 0]).max())

    assert largest("leaf") <= 20
    assert largest("eom") >= 3 * largest("leaf")  # what the default selection did
    gaps = {selection: GapClusterer(min_cluster_size=3, cluster_selection=selection) for selection in ("leaf", "eom")}
    for clusterer in gaps.values():
        clusterer.fit_predict(vectors, np.arange(90) < 60, np.full(90, 0.6), reference=NO_TRAINING)
    assert (gaps["leaf"].near_gap_ == gaps["eom"].near_gap_).all()  # the topics differ, the gaps do not


def test_an_unknown_cluster_selection_is_a_clear_error():
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="leaf, eom"):
        cluster(topics([4])[0], cluster_selection="excess")


def test_sub_themes_merge_when_closer_to_each_other_than_to_training():
    rng = np.random.default_rng(4)
    themes = unit([np.eye(DIM)[0] + 0.5 * np.eye(DIM)[1], np.eye(DIM)[0] - 0.5 * np.eye(DIM)[1]])  # cosine 0.6
    vectors = unit(np.repeat(themes, 8, axis=0) + 0.03 * rng.normal(size=(16, DIM)))
    far_from_training = cluster(vectors, training_similarity=0.3, min_cluster_size=3)
    near_training = cluster(vectors, training_similarity=0.7, min_cluster_size=3)
    assert (far_from_training == 0).all()
    assert sorted(set(near_training[:8])) == [near_training[0]] and sorted(set(near_training[8:])) == [near_training[8]]
    assert near_training[0] != near_training[8]


def test_too_few_gaps_make_no_cluster():
    vectors, _ = topics([2])
    assert (cluster(vectors, min_cluster_size=3) == -1).all()
    assert cluster(NO_TRAINING, np.zeros(0, bool)).shape == (0,)
    same = np.repeat(unit([np.arange(DIM) + 1.0]), 5, axis=0)
    assert (cluster(same) == 0).all()  # identical rows: one topic


def test_clustering_is_reproducible():
    vectors, _ = topics([5, 7, 6], spread=0.2, seed=3)
    np.testing.assert_array_equal(cluster(vectors, seed=1), cluster(vectors, seed=1))


def test_default_min_cluster_size_grows_slowly():
    assert default_min_cluster_size(0) == default_min_cluster_size(400) == 3
    assert default_min_cluster_size(10_000) == 12


def test_representatives_are_distinct_and_most_central_first():
    vectors = unit([[1, 0.1], [0.5, 1], [1, 0.1], [1, 0], [0.5, -1], [1, -0.2]])
    texts = ["near", "outlier", "near", "centre", "outlier", "other side"]
    assert representatives(vectors, texts, limit=3) == ["centre", "near", "other side"]


def test_majority_prefers_the_smallest_id_on_ties_and_ignores_noise():
    assert majority([2, 1, 2, 1, -1, -1, -1]) == 1
    assert majority([-1, -1]) is None


@pytest.mark.parametrize(("size", "count", "basis"), [(30, 90, "proportional"), (1, 10, "floor"), (1000, 120, "ceiling")])
def test_collection_is_proportional_to_traffic_and_bounded(size, count, basis):
    collection = recommended_collection(size, production_rows=1000, training_rows=3000, min_collect=10, max_collect=120)
    assert (collection.count, collection.basis) == (count, basis)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 10_000), st.integers(1, 100_000), st.integers(1, 50), st.integers(0, 5_000))
def test_collection_basis_names_the_rule_that_set_the_count(size, production_rows, training_rows, min_collect, max_collect):
    collection = recommended_collection(size, production_rows=production_rows, training_rows=training_rows,
                                        min_collect=min_collect, max_collect=max_collect)
    proportional = math.ceil(size / production_rows * training_rows)
    ceiling = max(max_collect, min_collect)
    assert collection.basis in COLLECT_BASES
    expected = {"ceiling": (proportional > ceiling, ceiling), "floor": (proportional < min_collect, min_collect),
                "proportional": (min_collect <= proportional <= ceiling, proportional)}
    holds, count = expected[collection.basis]
    assert holds and collection.count == count
