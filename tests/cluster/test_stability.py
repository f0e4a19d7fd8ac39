import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.cluster.clusterers import HDBSCANClusterer
from dataaudit.cluster.stability import best_match_jaccard, bootstrap_stability


def test_best_match_jaccard_on_a_hand_worked_example():
    original = np.array([0, 0, 0, 0, 1, 1, -1, 2])
    relabelled = np.array([5, 5, 5, -1, 2, 2, 2, -1])

    best, present = best_match_jaccard(original, relabelled, np.array([0, 1, 2, 3]))

    assert np.allclose(best, [3 / 4, 2 / 3, 0.0, 0.0])
    assert present.tolist() == [True, True, True, False]


@given(
    st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 4)), min_size=1, max_size=60),
)
@settings(max_examples=60, deadline=None)
def test_best_match_jaccard_is_within_zero_and_one(pairs):
    original = np.array([p[0] for p in pairs])
    relabelled = np.array([p[1] for p in pairs])
    clusters = np.unique(original[original >= 0])

    best, present = best_match_jaccard(original, relabelled, clusters)

    assert ((best >= 0) & (best <= 1)).all()
    assert present.all()
    identical, _ = best_match_jaccard(original, original, clusters)
    assert np.allclose(identical, 1.0)


def test_well_separated_clusters_are_fully_stable_and_arbitrary_splits_are_not(blobs):
    embeddings, _, topics = blobs
    clusterer = HDBSCANClusterer()

    real = bootstrap_stability(embeddings, topics, clusterer, min_cluster_size=20, resamples=4, seed=1)
    # Cut topic 0 in two halves along its members' order: no density gap, so not reproducible.
    arbitrary = topics.copy()
    arbitrary[np.flatnonzero(topics == 0)[::2]] = 9
    halves = bootstrap_stability(embeddings, arbitrary, clusterer, min_cluster_size=20, resamples=4, seed=1)

    assert real == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}
    assert halves[0] < 0.7 and halves[9] < 0.7
    assert all(0.0 <= s <= 1.0 for s in halves.values())


def test_same_seed_same_stability(blobs):
    embeddings, _, topics = blobs
    noisy = np.where(np.arange(len(topics)) % 7 == 0, -1, topics)
    run = lambda: bootstrap_stability(embeddings, noisy, HDBSCANClusterer(), min_cluster_size=20, resamples=3, seed=4)
    assert run() == run()
