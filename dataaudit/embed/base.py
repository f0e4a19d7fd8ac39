"""What an embedder is, plus the two embedders that need no model.

Every later stage (kNN, clustering, checks, coverage) only sees an :class:`Embedder`, so tests can
run on the deterministic :class:`HashingEmbedder` and API users can bring their own vectors through
:class:`PrecomputedEmbedder`.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from dataaudit.errors import UsageError
from dataaudit.params import Component, Interval
from dataaudit.progress import NULL_PROGRESS, Progress

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACES = re.compile(r"\s+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors.

    ``model_id`` names everything that determines the vectors (model, weights, settings). Caches
    key on it, so it must be identical wherever the same model is used and differ whenever the
    vectors could differ.
    """

    model_id: str

    def embed(self, texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        """Return an ``(len(texts), d)`` float32 array of L2-normalised rows, never NaN."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows as float32; all-zero rows stay zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class HashingEmbedder(Component):
    """A fast, deterministic stand-in for a sentence model in unit tests.

    Features are lower-cased word unigrams plus character 3-grams, hashed with a keyed BLAKE2b
    (stable across processes, unlike the salted built-in ``hash``) into ``dim`` signed buckets.
    Texts sharing words or spelling get high cosine similarity; the signs keep unrelated texts
    near zero. It knows nothing about meaning: paraphrases with different words score low.
    """

    _parameter_constraints = {"dim": [Interval(int, 1, None)], "seed": [int]}

    def __init__(self, *, dim: int = 256, seed: int = 0):
        self.dim = dim
        self.seed = seed

    @property
    def model_id(self) -> str:
        return f"hashing-{self.dim}-{self.seed}"

    def embed(self, texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        if self.dim < 1:
            raise UsageError(f"HashingEmbedder dim must be at least 1, got {self.dim}")
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        with progress.task("Embedding (hashing)", total=len(texts)) as task:
            for row, text in enumerate(texts):
                for feature in _features(text):
                    bucket, sign = _hash_feature(feature, self.dim, self.seed)
                    vectors[row, bucket] += sign
                task.advance(1)
        return normalize_rows(vectors)


def _features(text: str) -> list[str]:
    normalized = _SPACES.sub(" ", text.lower()).strip()
    words = ["w:" + word for word in _WORD.findall(normalized)]
    padded = f" {normalized} "
    trigrams = ["c:" + padded[i : i + 3] for i in range(len(padded) - 2)] if normalized else []
    return words + trigrams


@lru_cache(maxsize=1 << 18)
def _hash_feature(feature: str, dim: int, seed: int) -> tuple[int, float]:
    digest = hashlib.blake2b(
        feature.encode("utf-8", errors="surrogatepass"),
        digest_size=8,
        key=seed.to_bytes(8, "little", signed=True),
    ).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dim, (1.0 if value & 1 else -1.0)


class PrecomputedEmbedder:
    """Serves vectors the caller already has, so the audit can skip embedding entirely.

    Rows are re-normalised (the rest of the pipeline relies on unit vectors). Asking for a text
    that was not supplied is a :class:`~dataaudit.errors.UsageError`, not a ``KeyError``.
    """

    def __init__(self, *, texts: Sequence[str], embeddings: np.ndarray):
        self.texts = texts
        self.embeddings = embeddings

    @property
    def model_id(self) -> str:
        # Identity is the data itself: two embedders with the same pairs share cache entries.
        self._index()
        return self.model_id_

    def embed(self, texts: Sequence[str], *, progress: Progress = NULL_PROGRESS) -> np.ndarray:
        index = self._index()
        rows = np.empty(len(texts), dtype=np.int64)
        missing: list[str] = []
        for position, text in enumerate(texts):
            row = index.get(text)
            if row is None:
                missing.append(text)
            else:
                rows[position] = row
        if missing:
            raise UsageError(
                f"PrecomputedEmbedder has no embedding for {len(missing)} text(s), "
                f"e.g. {_preview(missing[0])}; pass every text you audit in `texts=`"
            )
        with progress.task("Embedding (precomputed)", total=len(texts)) as task:
            result = self.vectors_[rows]
            task.advance(len(texts))
        return result

    def _index(self) -> dict[str, int]:
        if getattr(self, "index_", None) is None:
            vectors = np.asarray(self.embeddings)
            if vectors.ndim != 2 or vectors.shape[0] != len(self.texts):
                raise UsageError(
                    f"PrecomputedEmbedder needs one row per text: got {len(self.texts)} texts and "
                    f"embeddings of shape {vectors.shape}"
                )
            if not np.all(np.isfinite(vectors)):
                bad = int(np.flatnonzero(~np.all(np.isfinite(vectors), axis=1))[0])
                raise UsageError(f"PrecomputedEmbedder embedding row {bad} contains NaN or inf")
            vectors = normalize_rows(vectors)
            index: dict[str, int] = {}
            for row, text in enumerate(self.texts):
                first = index.setdefault(text, row)
                if first != row and not np.allclose(vectors[first], vectors[row], atol=1e-6):
                    raise UsageError(
                        f"PrecomputedEmbedder got two different embeddings (rows {first} and "
                        f"{row}) for the same text {_preview(text)}"
                    )
            digest = hashlib.blake2b(digest_size=8)
            for text in self.texts:
                digest.update(text.encode("utf-8", errors="surrogatepass") + b"\0")
            digest.update(np.ascontiguousarray(vectors).tobytes())
            self.vectors_ = vectors
            self.model_id_ = f"precomputed-{vectors.shape[1]}-{digest.hexdigest()}"
            self.index_ = index
        return self.index_


def _preview(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
