"""Text embedding: the :class:`Embedder` protocol, its implementations and the on-disk cache.

Importing this package never imports torch or sentence_transformers; the real model loads on the
first :meth:`SentenceTransformerEmbedder.embed`.
"""

from dataaudit.embed.base import Embedder, HashingEmbedder, PrecomputedEmbedder
from dataaudit.embed.cache import CachingEmbedder, EmbeddingCache, NullCache, default_cache_dir
from dataaudit.embed.sentence_transformers import SentenceTransformerEmbedder

__all__ = [
    "CachingEmbedder",
    "Embedder",
    "EmbeddingCache",
    "HashingEmbedder",
    "NullCache",
    "PrecomputedEmbedder",
    "SentenceTransformerEmbedder",
    "default_cache_dir",
]
