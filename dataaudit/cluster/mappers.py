"""2-D map coordinates for plotting the clustered data.

A full 2-D UMAP costs as much as the reduction itself (tens of seconds on 15,000 rows),
so the default starts from the reduced layout, which already holds the cluster
structure, and only refines it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from dataaudit.cluster.reducers import run_umap
from dataaudit.params import OPTIONAL_SEED, Component, Interval, Options

if TYPE_CHECKING:
    from dataaudit.neighbors import KnnGraph


class Mapper(Protocol):
    def fit_transform(
        self, embeddings: np.ndarray, *, reduced: np.ndarray, knn: "KnnGraph | None" = None, seed: int = 0
    ) -> np.ndarray: ...

    def get_params(self) -> dict[str, Any]: ...


class UMAPMapper(Component):
    """2-D UMAP of the embeddings.

    ``init="reduced"`` starts from the PCA of the reduced layout and runs ``n_epochs``
    (default 100) optimisation epochs: it skips the spectral initialisation and most of
    the epochs, for about a quarter of a full run's time and nearly the same
    neighbourhood fidelity. ``init="spectral"`` with ``n_epochs=None`` is plain UMAP.
    ``seed=None`` takes the pipeline's seed.
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(int, 2, None)],
        "min_dist": [Interval(float, 0, None)],
        "metric": [str],
        "init": [Options({"reduced", "spectral"})],
        "n_epochs": [Interval(int, 1, None), None],
        "seed": OPTIONAL_SEED,
    }

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "cosine",
        init: Literal["reduced", "spectral"] = "reduced",
        n_epochs: int | None = 100,
        seed: int | None = None,
    ):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.init = init
        self.n_epochs = n_epochs
        self.seed = seed

    def fit_transform(
        self, embeddings: np.ndarray, *, reduced: np.ndarray, knn: "KnnGraph | None" = None, seed: int = 0
    ) -> np.ndarray:
        start: np.ndarray | str = "spectral"
        if self.init == "reduced" and len(reduced) > 2:
            projected = pca_2d(reduced)
            # UMAP rescales a given start per axis: a flat axis would turn into NaN.
            start = projected if np.ptp(projected, axis=0).min() > 0 else "spectral"
        return run_umap(
            embeddings,
            knn=knn,
            n_components=2,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            seed=self.seed if self.seed is not None else seed,
            init=start,
            n_epochs=self.n_epochs,
        )

    def get_params(self) -> dict[str, Any]:
        return {"name": "umap", **super().get_params()}


class PCAMapper(Component):
    """The first two principal axes of the reduced layout: instant, but clusters overlap more."""

    def fit_transform(
        self, embeddings: np.ndarray, *, reduced: np.ndarray, knn: "KnnGraph | None" = None, seed: int = 0
    ) -> np.ndarray:
        return pca_2d(reduced)

    def get_params(self) -> dict[str, Any]:
        return {"name": "pca"}


def pca_2d(points: np.ndarray) -> np.ndarray:
    """Coordinates on the two main axes (zeros where there is no spread), as float32.

    Signs are fixed so the largest loading of each axis is positive: the same input
    always gives the same picture.
    """
    points = np.asarray(points, dtype=np.float64)
    xy = np.zeros((len(points), 2), dtype=np.float32)
    if len(points) < 2 or points.ndim != 2 or points.shape[1] == 0:
        return xy
    centred = points - points.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    kept = min(2, int((singular > 1e-9 * max(singular[0], 1e-300)).sum()))
    for j in range(kept):
        axis = axes[j] * np.sign(axes[j][np.argmax(np.abs(axes[j]))])
        xy[:, j] = centred @ axis
    return xy
