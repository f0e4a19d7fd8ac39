"""Synthetic topic data: blobs around orthogonal unit vectors, with matching vocabularies."""

from __future__ import annotations

import numpy as np
import pytest

TOPIC_WORDS = [
    ["pizza", "cheese", "oven", "crust", "pepperoni"],
    ["flight", "airport", "boarding", "luggage", "runway"],
    ["invoice", "payment", "refund", "billing", "receipt"],
    ["guitar", "chord", "melody", "concert", "drummer"],
]
FILLER = ["please", "could", "you", "help", "me", "with", "the", "my", "today"]


def make_blobs(per_topic: int = 75, *, dim: int = 16, spread: float = 0.05, seed: int = 0):
    """``(embeddings, texts, topics)``: ``per_topic`` rows around each of 4 orthogonal unit vectors."""
    rng = np.random.default_rng(seed)
    topics = np.repeat(np.arange(len(TOPIC_WORDS)), per_topic)
    centres = np.eye(dim, dtype=np.float64)[: len(TOPIC_WORDS)]
    points = centres[topics] + rng.normal(scale=spread, size=(len(topics), dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    texts = [
        " ".join(list(rng.choice(TOPIC_WORDS[t], size=3)) + list(rng.choice(FILLER, size=3))) for t in topics
    ]
    return points.astype(np.float32), texts, topics


@pytest.fixture(scope="session")
def blobs():
    return make_blobs()


@pytest.fixture(scope="session")
def topic_words():
    return TOPIC_WORDS
