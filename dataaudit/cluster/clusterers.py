"""Density clustering of the reduced space, and the default minimum cluster size."""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from dataaudit.params import Component, Interval, Options

#: No cluster is smaller than this, however few rows there are.
MIN_CLUSTER_SIZE_FLOOR = 5


def derive_min_cluster_size(n_rows: int) -> int:
    """The smallest group worth calling a cluster: about √n / 5, and at least 5.

    It grows with the data so large sets are not shattered into hundreds of tiny
    clusters, but sub-linearly so rare topics in large sets still count
    (15,000 rows → 24, 3,000 → 11, 500 → 5).
    """
    return max(MIN_CLUSTER_SIZE_FLOOR, round(math.sqrt(max(n_rows, 0)) / 5))


class Clusterer(Protocol):
    def fit_predict(self, points: np.ndarray, *, min_cluster_size: int) -> np.ndarray: ...

    def get_params(self) -> dict[str, Any]: ...


class HDBSCANClusterer(Component):
    """HDBSCAN (the ``hdbscan`` package) with defaults tuned on intent data.

    ``min_cluster_size=None`` takes the size the pipeline derives from the row count.
    ``min_samples=5`` (below HDBSCAN's default of ``min_cluster_size``) keeps the noise
    share low. ``cluster_selection_epsilon=0.1`` stops splits between sub-groups closer
    than 0.1 apart: in a ``min_dist=0`` UMAP layout that joins paraphrase clumps of one
    topic, while real topic gaps are wider. It is in units of the space clustered.
    Deterministic: the same points give the same labels.
    """

    _parameter_constraints = {
        "min_cluster_size": [Interval(int, 2, None), None],
        "min_samples": [Interval(int, 1, None), None],
        "cluster_selection_method": [Options({"eom", "leaf"})],
        "cluster_selection_epsilon": [Interval(float, 0, None)],
    }

    def __init__(
        self,
        *,
        min_cluster_size: int | None = None,
        min_samples: int | None = 5,
        cluster_selection_method: str = "eom",
        cluster_selection_epsilon: float = 0.1,
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon

    def fit_predict(self, points: np.ndarray, *, min_cluster_size: int) -> np.ndarray:
        """Labels ``0..k-1`` per row, -1 for noise; too few rows for two clusters → all noise."""
        import hdbscan

        size = self.min_cluster_size if self.min_cluster_size is not None else min_cluster_size
        size = max(2, int(size))
        n_rows = len(points)
        if n_rows < 2 * size:
            return np.full(n_rows, -1, dtype=np.int64)
        samples = self.min_samples if self.min_samples is not None else size
        model = hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=max(1, min(int(samples), n_rows - 1)),
            cluster_selection_method=self.cluster_selection_method,
            cluster_selection_epsilon=float(self.cluster_selection_epsilon),
        )
        return np.asarray(model.fit_predict(np.asarray(points, dtype=np.float64)), dtype=np.int64)

    def get_params(self) -> dict[str, Any]:
        return {"name": "hdbscan", **super().get_params()}
