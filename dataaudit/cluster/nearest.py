"""A home cluster for every row, noise included."""

from __future__ import annotations

import numpy as np

_CHUNK = 4096


def nearest_clusters(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's own cluster; for noise, the cluster with the nearest centroid in ``points``.

    Measured on CLINC150 (UMAP space), nearest-centroid assignment of noise agrees with
    the gold intents better than a k-nearest-neighbour vote. All -1 when there are no
    clusters.
    """
    labels = np.asarray(labels, dtype=np.int64)
    nearest = labels.copy()
    clusters = np.unique(labels[labels >= 0])
    noise = np.flatnonzero(labels < 0)
    if clusters.size == 0 or noise.size == 0:
        return nearest
    points = np.asarray(points, dtype=np.float64)
    centroids = np.stack([points[labels == c].mean(axis=0) for c in clusters])
    centroid_norms = (centroids**2).sum(axis=1)
    for start in range(0, noise.size, _CHUNK):
        rows = noise[start : start + _CHUNK]
        distances = centroid_norms[None, :] - 2.0 * points[rows] @ centroids.T  # + |x|² is constant per row
        nearest[rows] = clusters[np.argmin(distances, axis=1)]
    return nearest
