"""The default engine: this machine.

Everything runs in this process, except that per-row Python work (:meth:`LocalEngine.map_frame`)
on large frames is spread over the machine's cores.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from dataaudit.engine.base import FrameFunction
from dataaudit.io.options import DEFAULT_LOAD, LoadOptions
from dataaudit.params import Component, Interval
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import available_cores

if TYPE_CHECKING:
    import polars as pl

    from dataaudit.dataset import Dataset
    from dataaudit.embed.base import Embedder
    from dataaudit.neighbors import KnnGraph


logger = logging.getLogger(__name__)


class LocalEngine(Component):
    """Reads, embeds and searches neighbours in the calling process; needs nothing extra installed.

    ``workers``: processes for per-row Python work (:meth:`map_frame`; None = one per CPU this
    process may use, 1 = none). Frames under ``parallel_min_rows`` rows stay in this process:
    starting the workers costs about a second, which only pays off on large frames.
    """

    name = "local"
    _parameter_constraints = {
        "exact_max_rows": [Interval(int, 0, None)],
        "workers": [Interval(int, 1, None), None],
        "parallel_min_rows": [Interval(int, 1, None)],
    }

    def __init__(self, *, exact_max_rows: int = 20_000, workers: int | None = None, parallel_min_rows: int = 50_000):
        self.exact_max_rows = exact_max_rows
        self.workers = workers
        self.parallel_min_rows = parallel_min_rows

    def load(self, path: str | os.PathLike, options: LoadOptions = DEFAULT_LOAD) -> "Dataset":
        """Read ``path`` in this process (:func:`dataaudit.io.load.load_with`)."""
        from dataaudit.io.load import load_with

        return load_with(path, options)

    def embed(self, embedder: "Embedder", texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        """Embed ``texts`` in this process, as float32 (the embedder batches them itself)."""
        return np.asarray(embedder.embed(list(texts), progress=progress), dtype=np.float32)

    def knn(self, vectors: np.ndarray, *, k: int, seed: int = 0, progress: Progress = NULL_PROGRESS) -> "KnnGraph":
        """Build the kNN graph here: exact up to ``exact_max_rows`` rows, approximate (pynndescent) above."""
        from dataaudit.neighbors import build_knn

        return build_knn(vectors, k=k, exact_max_rows=self.exact_max_rows, seed=seed, progress=progress)

    def map_frame(self, function: FrameFunction, frame: "pl.DataFrame", *,
                  progress: Progress = NULL_PROGRESS) -> "pl.DataFrame":
        """Apply ``function`` to ``frame``, in worker processes when that pays.

        Workers get contiguous slices (results in order) when the frame is large and more than one
        core is usable; the work runs here otherwise, and when the workers fail (a function holding
        an unpicklable object, say).
        """
        workers = min(self._workers(), -(-frame.height // max(1, self.parallel_min_rows // 4)))
        result = None
        if frame.height >= self.parallel_min_rows and workers >= 2:
            try:
                result = self._map_in_workers(function, frame, workers, progress)
            except Exception as error:  # noqa: BLE001 - e.g. a function that cannot be shipped; a real
                # error in the function itself raises again below, in this process
                logger.debug("worker processes failed (%s: %s); running in this process", type(error).__name__, error)
        if result is None:
            with progress.task("Per-row features", total=frame.height) as task:
                result = function(frame)
                task.advance(frame.height)
        if result.height != frame.height:
            raise ValueError(f"a map_frame function returned {result.height} rows for {frame.height}")
        return result

    def _map_in_workers(self, function: FrameFunction, frame: "pl.DataFrame", workers: int,
                        progress: Progress) -> "pl.DataFrame":
        import polars as pl
        from joblib import Parallel, delayed

        slices = 4 * workers  # a few per worker, so an uneven slice does not leave a core idle
        size = -(-frame.height // slices)
        parts = [frame.slice(start, size) for start in range(0, frame.height, size)]
        results: list[pl.DataFrame] = []
        # loky workers are fresh processes (this one may hold BLAS, numba or torch threads, which a
        # fork would not copy), reused across calls, and unlike multiprocessing's spawn they never
        # re-run the caller's script, so a script without an ``if __name__ == "__main__"`` guard works.
        parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator")
        with progress.task("Per-row features", total=frame.height) as task:
            calls = (delayed(_apply)(function, _packed(part)) for part in parts)
            for part, result in zip(parts, parallel(calls)):
                results.append(result)
                task.advance(part.height)
        logger.debug("per-row features of %d rows in %d processes", frame.height, workers)
        return pl.concat(results, how="vertical")

    def __repr__(self) -> str:
        """Part of the cache key of the kNN graphs: only what shapes results belongs in it."""
        return f"LocalEngine(exact_max_rows={self.exact_max_rows})"

    def _workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return available_cores()


def _packed(part: "pl.DataFrame") -> "bytes | pl.DataFrame":
    """``part`` as Arrow IPC at the oldest compat level, which holds its own rows only.

    A slice of a polars frame pickles with every buffer it points into (string views keep the
    whole column's data), so eight slices of 250,000 pairs of conversations travelled as 855 MB
    instead of 113 MB, and a worker holding them was restarted by loky as leaking. A frame IPC
    cannot hold (Object columns) travels as it is.
    """
    import io

    import polars as pl

    buffer = io.BytesIO()
    try:
        part.write_ipc(buffer, compat_level=pl.CompatLevel.oldest())
    except Exception:  # noqa: BLE001 - pickled instead, whole buffers and all
        return part
    return buffer.getvalue()


def _apply(function: FrameFunction, part: "bytes | pl.DataFrame") -> "pl.DataFrame":
    """``function`` on a part sent by :func:`_packed` (in a worker process)."""
    import io

    import polars as pl

    return function(pl.read_ipc(io.BytesIO(part)) if isinstance(part, bytes) else part)
