"""What an engine is: where the data-parallel stages of an audit run.

An audit has stages that split by rows (reading, embedding, per-row features) and global
steps (the kNN graph, clustering, group comparisons). An :class:`Engine` runs the first kind
and the kNN graph; everything else stays on the driver, whatever the engine. Every engine
must give the same results as :class:`~dataaudit.engine.local.LocalEngine` on the same data
and seed: engines change where work runs, never what it computes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Protocol, Sequence, runtime_checkable

from dataaudit.io.options import DEFAULT_LOAD, LoadOptions
from dataaudit.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from dataaudit.dataset import Dataset
    from dataaudit.embed.base import Embedder
    from dataaudit.neighbors import KnnGraph

#: A per-row transformation: a frame in, a frame with one row per input row out, in order.
FrameFunction = Callable[["pl.DataFrame"], "pl.DataFrame"]


@runtime_checkable
class Engine(Protocol):
    """Runs the row-parallel stages of an audit and builds the kNN graph."""

    name: str

    def load(self, path: str | os.PathLike, options: LoadOptions = DEFAULT_LOAD) -> "Dataset":
        """The same Dataset :func:`dataaudit.io.load.load_with` returns for these options."""
        ...

    def embed(self, embedder: "Embedder", texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> "np.ndarray":
        """``embedder.embed(texts)``, row for row."""
        ...

    def knn(self, vectors: "np.ndarray", *, k: int, seed: int = 0, progress: Progress = NULL_PROGRESS) -> "KnnGraph":
        """Each row's ``k`` nearest other rows, as :func:`dataaudit.neighbors.build_knn` defines them."""
        ...

    def map_frame(self, function: FrameFunction, frame: "pl.DataFrame", *,
                  progress: Progress = NULL_PROGRESS) -> "pl.DataFrame":
        """``function`` applied to consecutive slices of ``frame`` (sized by the engine), results in order.

        ``function`` must treat rows independently (any dataset-wide state is bound into it
        beforehand), so the way rows are sliced cannot change the result.
        """
        ...
