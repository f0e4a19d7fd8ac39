"""PrecomputedEmbedder: vectors the API user already has."""

from __future__ import annotations

import numpy as np
import pytest

from dataaudit.embed import PrecomputedEmbedder
from dataaudit.errors import UsageError


def test_looks_up_texts_in_any_order_and_normalises():
    embedder = PrecomputedEmbedder(texts=["a", "b"], embeddings=np.array([[3.0, 4.0], [0.0, 2.0]]))
    vectors = embedder.embed(["b", "a", "a"])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, [[0.0, 1.0], [0.6, 0.8], [0.6, 0.8]])


def test_missing_text_is_a_usage_error_naming_it():
    embedder = PrecomputedEmbedder(texts=["a"], embeddings=np.ones((1, 3)))
    with pytest.raises(UsageError, match="'never supplied'"):
        embedder.embed(["a", "never supplied"])


def test_row_count_mismatch_is_a_usage_error():
    with pytest.raises(UsageError, match="one row per text"):
        PrecomputedEmbedder(texts=["a", "b"], embeddings=np.ones((3, 4))).embed(["a"])


def test_nan_rows_are_rejected():
    with pytest.raises(UsageError, match="row 1"):
        PrecomputedEmbedder(texts=["a", "b"], embeddings=np.array([[1.0, 0.0], [np.nan, 1.0]])).embed(["a"])


def test_conflicting_vectors_for_one_text_are_rejected():
    embedder = PrecomputedEmbedder(texts=["a", "a"], embeddings=np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(UsageError, match="two different embeddings"):
        embedder.embed(["a"])


def test_model_id_follows_the_data():
    one = PrecomputedEmbedder(texts=["a"], embeddings=np.array([[1.0, 0.0]]))
    same = PrecomputedEmbedder(texts=["a"], embeddings=np.array([[2.0, 0.0]]))
    other = PrecomputedEmbedder(texts=["a"], embeddings=np.array([[0.0, 1.0]]))
    assert one.model_id == same.model_id != other.model_id
    assert one.model_id.startswith("precomputed-2-")
