"""HashingEmbedder: the deterministic fake every fast test embeds with."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.embed import Embedder, HashingEmbedder

texts_strategy = st.lists(st.text(max_size=60), max_size=12)


@given(texts=texts_strategy, dim=st.integers(min_value=1, max_value=64), seed=st.integers(-5, 5))
@settings(max_examples=60, deadline=None)
def test_shape_dtype_and_norm(texts, dim, seed):
    vectors = HashingEmbedder(dim=dim, seed=seed).embed(texts)
    assert vectors.shape == (len(texts), dim)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    norms = np.linalg.norm(vectors, axis=1)
    # Unit rows, or zero for texts without features (empty/whitespace) or fully cancelled signs.
    assert np.all(np.isclose(norms, 1.0, atol=1e-5) | np.isclose(norms, 0.0))


@given(texts=texts_strategy)
@settings(max_examples=40, deadline=None)
def test_deterministic_across_instances_and_batches(texts):
    together = HashingEmbedder().embed(texts)
    one_by_one = [HashingEmbedder().embed([text])[0] for text in texts]
    np.testing.assert_array_equal(together, np.array(one_by_one, dtype=np.float32).reshape(together.shape))


def test_identical_texts_get_identical_vectors():
    vectors = HashingEmbedder().embed(["same text", "other", "same text"])
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_similar_texts_score_high_unrelated_low():
    a, b, c = HashingEmbedder().embed(
        [
            "the quick brown fox jumps over the lazy dog",
            "the quick brown fox jumped over the lazy dog",
            "quarterly revenue grew by twelve percent",
        ]
    )
    assert a @ b > 0.7
    assert abs(a @ c) < 0.3


def test_real_sentences_are_unit_and_empty_is_zero():
    vectors = HashingEmbedder().embed(["How do I reset my password?", "", "   "])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1.0, 0.0, 0.0], atol=1e-6)


def test_case_and_whitespace_do_not_matter():
    a, b = HashingEmbedder().embed(["Hello   World", "hello world"])
    np.testing.assert_array_equal(a, b)


def test_seed_changes_vectors_and_model_id():
    first, second = HashingEmbedder(seed=0), HashingEmbedder(seed=1)
    assert first.model_id == "hashing-256-0"
    assert second.model_id == "hashing-256-1"
    assert HashingEmbedder(dim=64).model_id == "hashing-64-0"
    assert not np.array_equal(first.embed(["abc def"]), second.embed(["abc def"]))


def test_lone_surrogates_are_embedded_not_rejected():
    vectors = HashingEmbedder().embed(["broken \ud800 text"])
    assert np.isclose(np.linalg.norm(vectors), 1.0)


def test_satisfies_embedder_protocol():
    assert isinstance(HashingEmbedder(), Embedder)


def test_stable_across_processes_with_different_hash_seeds():
    code = (
        "from dataaudit.embed import HashingEmbedder;"
        "print(HashingEmbedder().embed(['stable hashing, please']).tobytes().hex())"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert len(outputs) == 1
