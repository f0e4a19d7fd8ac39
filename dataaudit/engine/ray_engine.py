"""The Ray engine: reading, embedding, per-row features and the kNN graph on a Ray cluster.

Row-parallel stages are split by rows and put back together in input order; the one global
step here, the kNN graph, sees every row: the exact search sends slices of queries to tasks
that each scan all rows (the vectors go to the object store once), and past
``exact_max_rows`` a bucketed search (:mod:`dataaudit.engine.buckets`) replaces the scan.
Clustering, group comparisons and coverage stay on the driver.

Identical results to :class:`~dataaudit.engine.local.LocalEngine` are the contract: a file is
read in line-aligned byte ranges (Parquet: row groups) with the same record reader and numbered
as one file; exact kNN slices queries on the local engine's block boundaries, so every matrix
product is the same one. ``ray`` is imported only inside methods.

Workers read the input path themselves, so on a multi-node cluster the file must be on a
filesystem every node mounts; the same holds for a :class:`~dataaudit.embed.CachingEmbedder`'s
cache directory.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from dataaudit.engine.base import FrameFunction
from dataaudit.errors import UsageError
from dataaudit.io.options import DEFAULT_LOAD, LoadOptions
from dataaudit.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    import polars as pl

    from dataaudit.dataset import Dataset
    from dataaudit.embed.base import Embedder
    from dataaudit.io.readers import RawRecord
    from dataaudit.neighbors import KnnGraph

logger = logging.getLogger(__name__)

_GPU_CHOICES = ("auto", True, False)


class RayEngine:
    """Runs the row-parallel stages of an audit on Ray (``pip install 'dataaudit[ray]'``).

    ``address``: an existing cluster (``"auto"``, ``"ray://host:10001"``); ``None`` joins the
    session already started in this process, or starts a local one. ``num_workers``: embedder
    replicas and parallel tasks (default: one per GPU when embedding on GPUs, else one per CPU).
    ``batch_size``: rows per embedding batch and per slice of per-row work. ``use_gpu``: ``"auto"`` puts one
    replica on each GPU when the cluster has any. ``read_chunk_bytes``: bytes of JSONL per read
    task. ``exact_max_rows``: above it the kNN graph is bucketed (approximate) rather than exact;
    ``buckets`` (default ≈ √n) and ``probes`` size that search.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_workers: int | None = None,
        batch_size: int = 1024,
        use_gpu: bool | str = "auto",
        read_chunk_bytes: int = 64 << 20,
        exact_max_rows: int = 200_000,
        buckets: int | None = None,
        probes: int = 8,
    ):
        self.address = address
        self.num_workers = num_workers
        self.batch_size = batch_size
        self.use_gpu = use_gpu
        self.read_chunk_bytes = read_chunk_bytes
        self.exact_max_rows = exact_max_rows
        self.buckets = buckets
        self.probes = probes

    def __repr__(self) -> str:
        """Show the engine's parameters, as every component does."""
        return (f"RayEngine(address={self.address!r}, num_workers={self.num_workers!r}, batch_size={self.batch_size}, "
                f"use_gpu={self.use_gpu!r}, read_chunk_bytes={self.read_chunk_bytes}, "
                f"exact_max_rows={self.exact_max_rows}, buckets={self.buckets!r}, probes={self.probes})")

    # -- reading ---------------------------------------------------------------------------

    def load(self, path: str | os.PathLike, options: LoadOptions = DEFAULT_LOAD) -> "Dataset":
        """Like :func:`dataaudit.io.load.load_with`, with the parsing spread over Ray tasks.

        JSONL files (``.jsonl``, ``.ndjson``) are split into line-aligned byte ranges and Parquet
        files into row groups; every other input (JSON arrays, CSV, gzip, a missing or empty
        file) is read by :func:`~dataaudit.io.load.load_with` on the driver, errors included.
        """
        from dataaudit.io.load import build_dataset, load_with
        from dataaudit.io.readers import container_of

        source = os.fspath(path)
        file = Path(source)
        container = container_of(file) if file.is_file() else "missing"
        records = None
        if container == "jsonl" and not file.name.lower().endswith(".gz"):
            records = self._read_jsonl(file)
        elif container == "parquet":
            records = self._read_parquet(file)
        if not records or all(record.row is None for record in records):
            return load_with(source, options)  # the local reader's own answer, or its own error
        return build_dataset(records, source=source, container=container, options=options)

    def _read_jsonl(self, file: Path) -> list["RawRecord"]:
        ray = self._ray()
        size = file.stat().st_size
        ranges = _line_aligned_ranges(file, size, max(1, self.read_chunk_bytes))
        read = _remote(ray, _read_jsonl_range)
        parts = ray.get([read.remote(str(file), start, stop) for start, stop in ranges])
        return _renumbered(parts)

    def _read_parquet(self, file: Path) -> list["RawRecord"] | None:
        import pyarrow.parquet as pq

        try:
            metadata = pq.ParquetFile(file).metadata
        except Exception:  # unreadable: the local reader words the error
            return None
        sizes = [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]
        if sum(sizes) == 0:
            return None
        ray = self._ray()
        read = _remote(ray, _read_parquet_rows)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        parts = ray.get([read.remote(str(file), start, size) for start, size in zip(starts, sizes) if size])
        return _renumbered(parts)

    # -- embedding -------------------------------------------------------------------------

    def embed(self, embedder: "Embedder", texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        """Embed with one replica of ``embedder`` per worker (a Ray actor each), rows in input order.

        The replicas outlive the call: the prompt, response and production views of one audit
        share them, so each worker loads the model once.
        """
        texts = list(texts)
        if not texts:
            return np.asarray(embedder.embed([], progress=progress), dtype=np.float32)
        pool = self._replicas(embedder)
        batch = max(1, self.batch_size)
        batches = [texts[start:start + batch] for start in range(0, len(texts), batch)]
        parts = []
        with progress.task("Embedding (Ray)", total=len(texts)) as task:
            for vectors in pool.map(lambda replica, rows: replica.embed.remote(rows), batches):
                parts.append(np.asarray(vectors, dtype=np.float32))
                task.advance(len(vectors))
        return np.concatenate(parts)

    def _replicas(self, embedder: "Embedder"):
        """A pool of embedder actors for ``embedder``, made on first use and kept for the next views."""
        if getattr(self, "replicas_for_", None) is not embedder:
            ray = self._ray()
            gpus = self._gpus(ray)
            # No CPU reserved: replicas idle between views would otherwise hold every CPU and
            # starve the kNN tasks. SPREAD puts them on different nodes all the same.
            replica = ray.remote(num_cpus=0, num_gpus=1 if gpus else 0, scheduling_strategy="SPREAD")(_EmbedderReplica)
            shared = ray.put(embedder)
            self.replicas_ = ray.util.ActorPool([replica.remote(shared) for _ in range(self._workers(ray, gpus))])
            self.replicas_for_ = embedder
        return self.replicas_

    # -- nearest neighbours ----------------------------------------------------------------

    def knn(self, vectors: np.ndarray, *, k: int, seed: int = 0, progress: Progress = NULL_PROGRESS) -> "KnnGraph":
        """Build the kNN graph on the cluster.

        :func:`~dataaudit.neighbors.build_knn`'s exact graph up to ``exact_max_rows``; above it, a
        bucketed approximation (recall in ``bench/bench_engine.py``).
        """
        from dataaudit.neighbors import build_knn, exact_block_rows, unit_rows

        unit = unit_rows(vectors)
        n = len(unit)
        k = max(0, min(k, n - 1))
        if k == 0:
            return build_knn(unit, k=0)
        ray = self._ray()
        if n > self.exact_max_rows:
            from dataaudit.engine.buckets import bucketed_knn

            return bucketed_knn(ray, unit, k=k, buckets=self.buckets, probes=self.probes, seed=seed,
                                workers=self._workers(ray, 0), progress=progress)
        block = exact_block_rows(n)
        blocks = math.ceil(n / block)
        # Whole blocks per task, a few tasks per worker so stragglers even out.
        task_rows = block * max(1, math.ceil(blocks / (4 * self._workers(ray, 0))))
        reference = ray.put(unit)
        search = _remote(ray, _exact_rows)
        threads = _blas_threads()
        pending = {search.remote(reference, start, min(start + task_rows, n), k, threads): start
                   for start in range(0, n, task_rows)}
        return _gathered_graph(ray, pending, n, k, progress)

    # -- per-row work ----------------------------------------------------------------------

    def map_frame(self, function: FrameFunction, frame: "pl.DataFrame", *,
                  progress: Progress = NULL_PROGRESS) -> "pl.DataFrame":
        """``function`` over ``batch_size``-row slices of ``frame`` in Ray tasks, results in input order."""
        import polars as pl

        batch_rows = max(1, self.batch_size)
        if frame.height <= batch_rows:
            return function(frame)  # one slice: a task would only add latency
        ray = self._ray()
        shared = ray.put(function)  # once, however many slices
        apply = _remote(ray, _apply_to_slice)
        pending = [apply.remote(shared, frame.slice(start, batch_rows)) for start in range(0, frame.height, batch_rows)]
        parts = []
        with progress.task("Per-row features (Ray)", total=frame.height) as task:
            for future in pending:
                part = ray.get(future)
                parts.append(part)
                task.advance(part.height)
        return pl.concat(parts, how="vertical")

    # -- the cluster -----------------------------------------------------------------------

    def _ray(self):
        """The ``ray`` module, connected: to ``address``, to this process's session, or to a new local one."""
        try:
            import ray
        except ImportError:
            raise UsageError("the Ray engine needs Ray: pip install 'dataaudit[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False, ignore_reinit_error=True)
        return ray

    def _gpus(self, ray) -> int:
        if self.use_gpu not in _GPU_CHOICES:
            raise UsageError(f"use_gpu must be one of {_GPU_CHOICES}, got {self.use_gpu!r}")
        available = int(ray.cluster_resources().get("GPU", 0))
        if self.use_gpu is True and available == 0:
            raise UsageError("use_gpu=True but the Ray cluster has no GPUs")
        return available if self.use_gpu in ("auto", True) else 0

    def _workers(self, ray, gpus: int) -> int:
        if self.num_workers is not None:
            if self.num_workers < 1:
                raise UsageError(f"num_workers must be at least 1, got {self.num_workers}")
            return self.num_workers
        return max(1, gpus or int(ray.cluster_resources().get("CPU", 1)))


class _EmbedderReplica:
    """One embedder per Ray actor: the model loads once per worker, not once per batch."""

    def __init__(self, embedder: "Embedder"):
        self.embedder = embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed(texts), dtype=np.float32)


def _apply_to_slice(function: FrameFunction, frame: "pl.DataFrame") -> "pl.DataFrame":
    result = function(frame)
    if result.height != frame.height:
        raise ValueError(f"a map_frame function returned {result.height} rows for {frame.height}")
    return result


_REMOTES: dict[Callable, Any] = {}


def _remote(ray, function: Callable):
    """``ray.remote(function)``, made once per process rather than exported on every call."""
    if function not in _REMOTES:
        _REMOTES[function] = ray.remote(num_cpus=1)(function)
    return _REMOTES[function]


def _line_aligned_ranges(file: Path, size: int, chunk: int) -> list[tuple[int, int]]:
    r"""Byte ranges of about ``chunk`` bytes, each ending just after a ``\n`` (the last at EOF)."""
    bounds = [0]
    with open(file, "rb") as handle:
        position = chunk
        while position < size:
            handle.seek(position)
            while True:
                piece = handle.read(1 << 16)
                if not piece:
                    position = size
                    break
                newline = piece.find(b"\n")
                if newline >= 0:
                    position += newline + 1
                    break
                position += len(piece)
            if position >= size:
                break
            bounds.append(position)
            position += chunk
    bounds.append(size)
    return list(zip(bounds[:-1], bounds[1:]))


def _read_jsonl_range(path: str, start: int, stop: int) -> list["RawRecord"]:
    """Records of one byte range, numbered as if the range were a whole file."""
    from dataaudit.io.readers import read_jsonl

    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(stop - start)
    return read_jsonl(data)


def _read_parquet_rows(path: str, start: int, length: int) -> list["RawRecord"]:
    """Rows ``start:start+length`` as records, encoded as :func:`~dataaudit.io.readers.read_table` does."""
    import polars as pl

    from dataaudit.io.readers import table_records

    return table_records(pl.scan_parquet(path).slice(start, length).collect())


def _renumbered(parts: list[list["RawRecord"]]) -> list["RawRecord"]:
    """Concatenate per-range records, shifting each range's lines and rows by what came before."""
    from dataclasses import replace

    records: list["RawRecord"] = []
    lines_before = rows_before = 0
    for part in parts:
        if lines_before or rows_before:
            part = [replace(record, line=record.line + lines_before,
                            row=None if record.row is None else record.row + rows_before) for record in part]
        records.extend(part)
        lines_before += len(part)
        rows_before += sum(record.row is not None for record in part)
    return records


def _exact_rows(reference: np.ndarray, start: int, stop: int, k: int, threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start:stop`` of the exact graph, with as many BLAS threads as the driver uses.

    A matrix product's low bits depend on how many BLAS threads compute it (one thread against
    two differed by up to 1.8e-7 here), and Ray starts its workers with one, so a task that kept
    that default would break ties differently from :func:`~dataaudit.neighbors.build_knn`.
    """
    from threadpoolctl import threadpool_limits

    from dataaudit.neighbors import exact_knn

    with threadpool_limits(limits=threads, user_api="blas"):
        graph = exact_knn(reference[start:stop], reference, k=k, self_rows=np.arange(start, stop))
    return graph.indices, graph.similarities


def _blas_threads() -> int | None:
    """The BLAS thread count of this process (None: no BLAS found, leave the workers alone)."""
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else None


def _gathered_graph(ray, pending: dict, n: int, k: int, progress: Progress) -> "KnnGraph":
    """Collect ``{future: first row}`` task results into one graph as they finish."""
    from dataaudit.neighbors import KnnGraph

    indices = np.empty((n, k), dtype=np.int64)
    similarities = np.empty((n, k), dtype=np.float32)
    with progress.task("Nearest neighbours (Ray, exact)", total=n) as task:
        waiting = list(pending)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            start = pending[done[0]]
            part_indices, part_similarities = ray.get(done[0])
            indices[start:start + len(part_indices)] = part_indices
            similarities[start:start + len(part_indices)] = part_similarities
            task.advance(len(part_indices))
    return KnnGraph(indices=indices, similarities=similarities)
