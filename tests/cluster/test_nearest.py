import numpy as np

from dataaudit.cluster.nearest import nearest_clusters


def test_noise_goes_to_the_cluster_with_the_nearest_centroid():
    points = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0], [9.0, 0.0], [1.0, 0.0]])
    labels = np.array([3, 3, 7, 7, -1, -1])

    assert nearest_clusters(points, labels).tolist() == [3, 3, 7, 7, 7, 3]


def test_without_clusters_everything_stays_minus_one():
    assert nearest_clusters(np.zeros((3, 2)), np.full(3, -1)).tolist() == [-1, -1, -1]
