"""The default engine: everything in this process, exactly as dataaudit always ran."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from dataaudit.engine.base import FrameFunction
from dataaudit.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    import polars as pl

    from dataaudit.dataset import Dataset
    from dataaudit.embed.base import Embedder
    from dataaudit.neighbors import KnnGraph


class LocalEngine:
    """Reads, embeds and searches neighbours in the calling process; needs nothing extra installed."""

    name = "local"

    def __init__(self, *, exact_max_rows: int = 20_000):
        self.exact_max_rows = exact_max_rows

    def load(
        self,
        path: str | os.PathLike,
        *,
        format: str = "auto",
        prompt_field: str | None = None,
        response_field: str | None = None,
        label_field: str | None = None,
        system_field: str | None = None,
        skip_bad_lines: bool = False,
    ) -> "Dataset":
        from dataaudit.io.load import load

        return load(path, format=format, prompt_field=prompt_field, response_field=response_field,
                    label_field=label_field, system_field=system_field, skip_bad_lines=skip_bad_lines)

    def embed(self, embedder: "Embedder", texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        return np.asarray(embedder.embed(list(texts), progress=progress), dtype=np.float32)

    def knn(self, vectors: np.ndarray, *, k: int, seed: int = 0, progress: Progress = NULL_PROGRESS) -> "KnnGraph":
        from dataaudit.neighbors import build_knn

        return build_knn(vectors, k=k, exact_max_rows=self.exact_max_rows, seed=seed, progress=progress)

    def map_frame(self, function: FrameFunction, frame: "pl.DataFrame", *,
                  progress: Progress = NULL_PROGRESS) -> "pl.DataFrame":
        with progress.task("Per-row features", total=frame.height) as task:
            result = function(frame)
            task.advance(frame.height)
        return result

    def __repr__(self) -> str:
        return f"LocalEngine(exact_max_rows={self.exact_max_rows})"
