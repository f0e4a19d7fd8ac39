"""Glue between our kNN graph and UMAP: reuse neighbours instead of searching again."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    from dataaudit.neighbors import KnnGraph


def umap_precomputed_knn(knn: "KnnGraph | None", *, n_rows: int, n_neighbors: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``knn`` in UMAP's ``precomputed_knn`` layout, or None when it cannot serve.

    UMAP counts a point as its own first neighbour at distance 0 and wants cosine
    *distances*; our graph excludes self and stores similarities. A graph that is too
    narrow for ``n_neighbors``, built on other rows, or with missing (-1) neighbours is
    not usable, and UMAP then searches for neighbours itself.
    """
    if knn is None:
        return None
    indices = np.asarray(knn.indices)
    if indices.ndim != 2 or indices.shape[0] != n_rows or indices.shape[1] < n_neighbors - 1 or (indices < 0).any():
        return None
    width = n_neighbors - 1
    own = np.arange(n_rows, dtype=np.int64)[:, None]
    similarities = np.asarray(knn.similarities, dtype=np.float32)[:, :width]
    umap_indices = np.concatenate([own, indices[:, :width].astype(np.int64)], axis=1)
    umap_distances = np.concatenate([np.zeros((n_rows, 1), np.float32), np.clip(1.0 - similarities, 0.0, 2.0)], axis=1)
    return umap_indices, umap_distances.astype(np.float32)


@contextmanager
def quiet_umap() -> Iterator[None]:
    """Silence UMAP's chatty warnings (seeded runs are single-threaded; no search index)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="umap")
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        yield
