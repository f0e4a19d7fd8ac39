"""Medoid-like members that show what a cluster is about."""

from __future__ import annotations

import numpy as np


def central_members(embeddings: np.ndarray, labels: np.ndarray, *, top_n: int = 5) -> dict[int, list[int]]:
    """Per cluster, the row positions of the ``top_n`` members most cosine-similar to its centroid.

    The centroid is the mean of the unit-normalised member vectors, so the picks are the
    most typical members, not the longest ones. Ties go to the earlier row.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    picks: dict[int, list[int]] = {}
    for cluster in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == cluster)
        similarity = vectors[members] @ vectors[members].mean(axis=0)
        picks[int(cluster)] = members[np.argsort(-similarity, kind="stable")[:top_n]].astype(int).tolist()
    return picks
