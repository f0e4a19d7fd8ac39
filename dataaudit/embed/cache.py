"""An on-disk embedding cache, so re-auditing an edited dataset only embeds the changed texts.

Layout: ``<directory>/<sanitised model_id>/shard-*.npy``. Each shard is a structured ``.npy``
array of ``(key: 16 bytes, vector: float32[d])`` rows, where the key is the BLAKE2b-128 of the
text's UTF-8 bytes. Shards are immutable, uniquely named and appear atomically (temp file in the
same folder, fsync, ``os.replace``), so any number of processes can share one directory without
locks: the worst a race can cause is recomputing a vector, never a wrong or missing one. Many
small shards are merged into one now and then; the merged shard is written before its sources
are deleted, so readers never lose entries. Files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from dataaudit.embed.base import Embedder
from dataaudit.io.atomic import atomic_output
from dataaudit.progress import NULL_PROGRESS, Progress
from dataaudit.runtime import default_cache_dir  # noqa: F401  (its old home; embed exports it)

logger = logging.getLogger(__name__)

KEY_BYTES = 16
_SHARD = re.compile(r"^shard-[0-9a-f]+-[0-9]+-[0-9a-f]+\.npy$")
# Temp files of dataaudit.io.atomic writing a shard, left behind only by a killed writer.
_TEMP_GLOB = ".shard-*.tmp"
# Merge once this many small shards pile up; "small" shards are the only ones rewritten, so a
# big cache is never copied just to absorb a few new rows.
_COMPACT_AT = 32
_SMALL_SHARD_BYTES = 32 << 20
_STALE_TEMP_SECONDS = 24 * 3600


def text_key(text: str) -> bytes:
    """Cache key of a text: BLAKE2b-128 of its UTF-8 bytes (lone surrogates kept, not lost)."""
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=KEY_BYTES).digest()


class VectorCache(Protocol):
    """What :class:`CachingEmbedder` needs from a cache."""

    def lookup(self, model_id: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``found`` (bool per key) and the float32 vectors of the found keys, in order."""
        ...

    def store(self, model_id: str, keys: Sequence[bytes], vectors: np.ndarray) -> None: ...


class NullCache:
    """Remembers nothing: every lookup misses, every store is dropped."""

    def lookup(self, model_id: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(keys), dtype=bool), np.empty((0, 0), dtype=np.float32)

    def store(self, model_id: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        return None


@dataclass
class _Shelf:
    """One model's shards as loaded into memory."""

    folder: Path
    blocks: dict[str, tuple[list[bytes], np.ndarray]] = field(default_factory=dict)  # keys, vectors
    index: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    dim: int | None = None


class EmbeddingCache:
    """Embedding vectors on disk, one folder per model_id (see the module docstring)."""

    def __init__(self, *, directory: str | os.PathLike):
        self.directory = directory

    def lookup(self, model_id: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        shelf = self._shelf(model_id)
        self._refresh(shelf)
        found = np.zeros(len(keys), dtype=bool)
        by_shard: dict[str, tuple[list[int], list[int]]] = {}
        for position, key in enumerate(keys):
            location = shelf.index.get(key)
            if location is not None:
                found[position] = True
                outs, rows = by_shard.setdefault(location[0], ([], []))
                outs.append(position)
                rows.append(location[1])
        if shelf.dim is None or not found.any():
            return found, np.empty((0, shelf.dim or 0), dtype=np.float32)
        rank = np.cumsum(found) - 1
        vectors = np.empty((int(found.sum()), shelf.dim), dtype=np.float32)
        for name, (outs, rows) in by_shard.items():
            vectors[rank[outs]] = shelf.blocks[name][1][rows]
        # Shards are memory-mapped and only the rows served are read, so check those here.
        finite = np.all(np.isfinite(vectors), axis=1)
        if not finite.all():
            logger.warning("embedding cache for %s holds %d NaN/inf vectors; re-embedding them",
                           model_id, int((~finite).sum()))
            found[np.flatnonzero(found)[~finite]] = False
            vectors = vectors[finite]
        return found, vectors

    def store(self, model_id: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if len(keys) == 0:
            return
        vectors = np.array(vectors, dtype=np.float32)  # a copy: the caller may reuse its array
        shelf = self._shelf(model_id)
        if shelf.dim is not None and vectors.shape[1] != shelf.dim:
            logger.warning("not caching %d-d vectors next to %d-d ones for %s", vectors.shape[1], shelf.dim, model_id)
            return
        try:
            shelf.folder.mkdir(parents=True, exist_ok=True)
            name = _write_shard(shelf.folder, list(keys), vectors)
        except OSError as error:
            # The cache only saves time; a full or read-only disk must not stop the audit.
            logger.warning("could not write to embedding cache %s: %s", shelf.folder, error)
            return
        self._adopt(shelf, name, list(keys), vectors)
        self._refresh(shelf)
        self._compact_if_needed(shelf)

    def _shelf(self, model_id: str) -> _Shelf:
        shelves = self.__dict__.setdefault("shelves_", {})
        if model_id not in shelves:
            shelves[model_id] = _Shelf(folder=Path(self.directory) / folder_name(model_id))
        return shelves[model_id]

    def _refresh(self, shelf: _Shelf) -> None:
        """Load shards other processes (or earlier runs) wrote; forget ones merged away."""
        on_disk = set(_list_shards(shelf.folder))
        for name in sorted(on_disk - shelf.blocks.keys() - shelf.rejected):
            loaded = _read_shard(shelf.folder / name, shelf.dim)
            if loaded is None:
                shelf.rejected.add(name)
            else:
                self._adopt(shelf, name, *loaded)
        for name in shelf.blocks.keys() - on_disk:
            keys, _ = shelf.blocks.pop(name)
            for key in keys:
                if shelf.index.get(key, ("",))[0] == name:
                    del shelf.index[key]

    def _adopt(self, shelf: _Shelf, name: str, keys: list[bytes], vectors: np.ndarray) -> None:
        shelf.dim = vectors.shape[1] if shelf.dim is None else shelf.dim
        shelf.blocks[name] = (keys, vectors)
        for row, key in enumerate(keys):
            shelf.index[key] = (name, row)

    def _compact_if_needed(self, shelf: _Shelf) -> None:
        small = [
            name
            for name, size in _list_shards(shelf.folder).items()
            if size < _SMALL_SHARD_BYTES and name in shelf.blocks
        ]
        if len(small) < _COMPACT_AT:
            return
        merged: dict[bytes, np.ndarray] = {}
        for name in small:
            keys, vectors = shelf.blocks[name]
            merged.update(zip(keys, vectors))
        keys = list(merged)
        vectors = np.stack(list(merged.values())).astype(np.float32, copy=False)
        try:
            name = _write_shard(shelf.folder, keys, vectors)
        except OSError as error:
            logger.warning("could not compact embedding cache %s: %s", shelf.folder, error)
            return
        self._adopt(shelf, name, keys, vectors)
        for old in small:
            shelf.blocks.pop(old, None)
            try:
                os.remove(shelf.folder / old)
            except OSError:
                pass  # already merged away by another process, or held open on Windows
        _remove_stale_temps(shelf.folder)
        logger.debug("compacted %d shards into %s (%d vectors)", len(small), name, len(keys))


class CachingEmbedder:
    """Wraps an embedder so that only texts missing from the cache get embedded.

    It is itself an :class:`~dataaudit.embed.base.Embedder` with the wrapped ``model_id``. After
    each :meth:`embed`, ``hits_`` and ``misses_`` count distinct texts served from the cache and
    embedded afresh (duplicates in the input are embedded once and not counted twice).
    """

    def __init__(self, *, embedder: Embedder, cache: VectorCache):
        self.embedder = embedder
        self.cache = cache

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def embed(self, texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        first_of: dict[bytes, int] = {}
        distinct_texts: list[str] = []
        slots = np.empty(len(texts), dtype=np.int64)
        for position, text in enumerate(texts):
            slot = first_of.setdefault(text_key(text), len(distinct_texts))
            if slot == len(distinct_texts):
                distinct_texts.append(text)
            slots[position] = slot
        if not distinct_texts:
            self.hits_, self.misses_ = 0, 0
            return self.embedder.embed([], progress=progress)

        model_id = self.model_id
        keys = list(first_of)
        found, cached = self.cache.lookup(model_id, keys)
        missing = np.flatnonzero(~found)
        fresh = None
        if len(missing):
            fresh = self.embedder.embed([distinct_texts[i] for i in missing], progress=progress)
        if fresh is not None and found.any() and fresh.shape[1] != cached.shape[1]:
            logger.warning(
                "embedding cache for %s holds %d-d vectors but the model gives %d-d; ignoring it",
                model_id, cached.shape[1], fresh.shape[1],
            )
            found[:] = False
            missing = np.arange(len(keys))
            fresh = self.embedder.embed(distinct_texts, progress=progress)
        dim = fresh.shape[1] if fresh is not None else cached.shape[1]
        vectors = np.empty((len(keys), dim), dtype=np.float32)
        if found.any():
            vectors[found] = cached
        if fresh is not None:
            vectors[missing] = fresh
            self.cache.store(model_id, [keys[i] for i in missing], fresh)
        self.hits_, self.misses_ = int(found.sum()), len(missing)
        return vectors[slots]


def folder_name(model_id: str) -> str:
    """A safe, collision-free folder name for a model_id (readable when it already is)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_id)[:100]
    if safe != model_id or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.blake2b(model_id.encode(), digest_size=6).hexdigest()}"
    return safe


def _list_shards(folder: Path) -> dict[str, int]:
    """Shard file names in ``folder`` with their sizes; empty if the folder does not exist."""
    shards: dict[str, int] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if _SHARD.match(entry.name):
                    try:
                        shards[entry.name] = entry.stat().st_size
                    except OSError:
                        pass  # deleted between listing and stat
    except (FileNotFoundError, NotADirectoryError):
        pass
    return shards


def _shard_dtype(dim: int) -> np.dtype:
    return np.dtype([("key", np.uint8, (KEY_BYTES,)), ("vector", "<f4", (dim,))])


def _write_shard(folder: Path, keys: list[bytes], vectors: np.ndarray) -> str:
    records = np.empty(len(keys), dtype=_shard_dtype(vectors.shape[1]))
    records["key"] = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
    records["vector"] = vectors
    name = f"shard-{time.time_ns():x}-{os.getpid()}-{secrets.token_hex(4)}.npy"
    with atomic_output(folder / name) as stream:
        np.save(stream, records, allow_pickle=False)
    _fsync_directory(folder)
    return name


def _read_shard(path: Path, expected_dim: int | None) -> tuple[list[bytes], np.ndarray] | None:
    """Keys and (memory-mapped) vectors of one shard, or None with a warning if it is unusable."""
    try:
        # Memory-mapped: a cache grown over many datasets is not read into RAM, only the rows
        # a lookup serves; a truncated file fails here because its header promises more bytes.
        records = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None  # merged away by another process between listing and reading
    except (OSError, ValueError, EOFError) as error:
        logger.warning("ignoring unreadable embedding cache shard %s: %s", path, error)
        return None
    names = records.dtype.names or ()
    if (
        records.ndim != 1
        or names != ("key", "vector")
        or records.dtype["key"] != np.dtype((np.uint8, (KEY_BYTES,)))
        or records.dtype["vector"].base != np.dtype("<f4")
        or records.dtype["vector"].ndim != 1
    ):
        logger.warning("ignoring embedding cache shard %s: unexpected layout %s", path, records.dtype)
        return None
    vectors = records["vector"]
    if expected_dim is not None and vectors.shape[1] != expected_dim:
        logger.warning("ignoring embedding cache shard %s: %d-d vectors, expected %d-d",
                       path, vectors.shape[1], expected_dim)
        return None
    raw = np.ascontiguousarray(records["key"]).tobytes()
    return [raw[i : i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)], vectors


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows cannot open directories)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove_stale_temps(folder: Path) -> None:
    """Delete temp files abandoned by writers that died long ago."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for path in folder.glob(_TEMP_GLOB):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass
