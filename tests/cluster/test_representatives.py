import numpy as np

from dataaudit.cluster.representatives import central_members


def test_the_members_closest_to_the_centroid_come_first_and_noise_is_ignored():
    embeddings = np.array(
        [[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.95, 0.05], [1.0, 1.0], [0.1, 0.9]], dtype=np.float32
    )
    labels = np.array([0, 0, 1, 0, -1, 1])

    picks = central_members(embeddings, labels, top_n=2)

    assert set(picks) == {0, 1}
    assert picks[0] == [3, 0]  # the centroid of rows 0, 1, 3 is nearest row 3, then row 0
    assert sorted(picks[1]) == [2, 5]


def test_at_most_top_n_and_only_members():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(40, 8)).astype(np.float32)
    labels = np.repeat([0, 1, 2, -1], 10)

    picks = central_members(embeddings, labels, top_n=5)

    for cluster, rows in picks.items():
        assert len(rows) == 5 and len(set(rows)) == 5
        assert all(labels[r] == cluster for r in rows)
