"""An on-disk cache of the audit's costly derived artefacts: the kNN graphs and the clustering.

With embeddings cached, a re-run's cost is what is computed from them: at 50,000 rows the kNN
graphs and clustering took 190 of the 250 seconds left. Each artefact is stored under a key that
hashes everything it is computed from — the vectors' bytes, the texts, every parameter, the
engine and the dataaudit version — so any change computes afresh, and nothing stale is served.

Files are NumPy ``.npz`` (read with ``allow_pickle=False``), Parquet and JSON, written atomically;
an unreadable or foreign file is ignored and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from dataaudit._version import __version__

if TYPE_CHECKING:
    from dataaudit.cluster.pipeline import Clustering
    from dataaudit.neighbors import KnnGraph

logger = logging.getLogger(__name__)


def artefact_key(*parts: Any) -> str:
    """A hex digest of ``parts``: arrays by dtype, shape and bytes, lists item by item (a million
    texts are not joined into one string first), the rest as sorted JSON."""
    digest = hashlib.blake2b(__version__.encode(), digest_size=20)
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            if array.size:  # an empty view cannot be cast to bytes
                digest.update(memoryview(array).cast("B"))
        elif isinstance(part, list):
            digest.update(f"list{len(part)}".encode())
            for item in part:
                digest.update(json.dumps(item, sort_keys=True, default=repr).encode("utf-8", "surrogatepass"))
                digest.update(b"\x1f")
        else:
            digest.update(json.dumps(part, sort_keys=True, default=repr).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


class NullArtefactCache:
    """Computes every artefact afresh: the default for library calls. It never asks for the key,
    so nobody pays for hashing a million vectors when nothing is cached."""

    def knn(self, key: Callable[[], str], compute: Callable[[], "KnnGraph"]) -> "KnnGraph":
        return compute()

    def clustering(self, key: Callable[[], str], compute: Callable[[], "Clustering"]) -> "Clustering":
        return compute()


NULL_ARTEFACTS = NullArtefactCache()


class ArtefactCache:
    """kNN graphs and clusterings in ``directory``, one set of files per key.

    ``key`` is a function giving the artefact's key (see :func:`artefact_key`), called once.
    """

    def __init__(self, *, directory: str | os.PathLike):
        self.directory = directory

    def knn(self, key: Callable[[], str], compute: Callable[[], "KnnGraph"]) -> "KnnGraph":
        from dataaudit.neighbors import KnnGraph

        path = self._path(f"knn-{key()}.npz")
        arrays = _read_npz(path, ("indices", "similarities"))
        if arrays is not None:
            logger.info("kNN graph from the artefact cache (%s)", path.name)
            return KnnGraph(indices=arrays["indices"], similarities=arrays["similarities"])
        graph = compute()
        _write_npz(path, indices=graph.indices, similarities=graph.similarities)
        return graph

    def clustering(self, key: Callable[[], str], compute: Callable[[], "Clustering"]) -> "Clustering":
        import polars as pl

        from dataaudit.cluster.pipeline import CLUSTERS_SCHEMA, Clustering

        name = f"clustering-{key()}"
        arrays_path, clusters_path, params_path = (self._path(f"{name}.{ext}") for ext in ("npz", "parquet", "json"))
        arrays = _read_npz(arrays_path, ("labels", "nearest_cluster", "xy"))
        if arrays is not None:
            try:
                clusters = pl.read_parquet(clusters_path)
                params = json.loads(params_path.read_text(encoding="utf-8"))
            except Exception:  # a half-written or foreign file: recompute
                clusters = params = None
            if clusters is not None and dict(clusters.schema) == CLUSTERS_SCHEMA and isinstance(params, dict):
                logger.info("clustering from the artefact cache (%s)", arrays_path.name)
                return Clustering(labels=arrays["labels"], nearest_cluster=arrays["nearest_cluster"], xy=arrays["xy"],
                                  clusters=clusters, params=params)
        clustering = compute()
        from dataaudit.io.atomic import atomic_path, write_text_atomic

        # Parquet and JSON first, the arrays last: the arrays file is what marks the set complete.
        try:
            clusters_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(clusters_path) as temporary:
                clustering.clusters.write_parquet(temporary)
            write_text_atomic(params_path, json.dumps(clustering.params, default=repr))
        except OSError as error:
            logger.warning("could not write the clustering to the artefact cache: %s", error)
            return clustering
        _write_npz(arrays_path, labels=clustering.labels, nearest_cluster=clustering.nearest_cluster, xy=clustering.xy)
        return clustering

    def _path(self, name: str) -> Path:
        return Path(self.directory) / name


def _read_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in names}
    except (OSError, KeyError, ValueError, EOFError):
        return None


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    from dataaudit.io.atomic import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, **arrays)
    except OSError as error:  # a read-only or full cache only costs the next run time
        logger.warning("could not write %s to the artefact cache: %s", path.name, error)
