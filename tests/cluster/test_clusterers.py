import numpy as np
import pytest

from dataaudit.cluster.clusterers import HDBSCANClusterer, derive_min_cluster_size


@pytest.mark.parametrize(("n_rows", "expected"), [(0, 5), (1, 5), (500, 5), (3_000, 11), (10_000, 20), (15_000, 24)])
def test_min_cluster_size_grows_with_the_square_root_of_the_row_count(n_rows, expected):
    assert derive_min_cluster_size(n_rows) == expected


def test_hdbscan_finds_separated_groups_and_too_few_rows_are_noise(blobs):
    embeddings, _, topics = blobs
    clusterer = HDBSCANClusterer()

    labels = clusterer.fit_predict(embeddings, min_cluster_size=20)

    assert labels.dtype == np.int64
    assert len(set(labels[labels >= 0])) == 4
    for topic in range(4):
        found = labels[(topics == topic) & (labels >= 0)]
        assert len(set(found.tolist())) == 1
    assert (clusterer.fit_predict(embeddings[:9], min_cluster_size=5) == -1).all()


def test_its_own_min_cluster_size_overrides_the_one_passed_in(blobs):
    embeddings, _, _ = blobs

    labels = HDBSCANClusterer(min_cluster_size=200).fit_predict(embeddings, min_cluster_size=5)

    assert (labels == -1).all()  # 300 rows cannot hold two clusters of 200
