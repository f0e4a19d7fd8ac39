"""EmbeddingCache and CachingEmbedder: only changed texts get embedded, and the cache survives
concurrent writers, corrupt files and killed processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dataaudit.embed import (
    CachingEmbedder,
    Embedder,
    EmbeddingCache,
    HashingEmbedder,
    NullCache,
    default_cache_dir,
)
from dataaudit.embed.cache import folder_name, text_key

TEXTS = [
    "How do I reset my password?",
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "Summarise this article in two sentences.",
    "Write a haiku about autumn.",
]


class CountingEmbedder:
    """HashingEmbedder that records every text it was asked to embed."""

    def __init__(self):
        self.inner = HashingEmbedder(dim=32)
        self.seen: list[str] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def embed(self, texts, *, progress=None):
        self.seen.extend(texts)
        return self.inner.embed(texts)


def caching(directory: Path) -> tuple[CachingEmbedder, CountingEmbedder]:
    counter = CountingEmbedder()
    return CachingEmbedder(embedder=counter, cache=EmbeddingCache(directory=directory)), counter


def shard_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/shard-*.npy"))


def test_second_call_embeds_nothing(tmp_path):
    embedder, counter = caching(tmp_path)
    first = embedder.embed(TEXTS)
    assert (embedder.hits_, embedder.misses_) == (0, len(TEXTS))
    counter.seen.clear()
    second = embedder.embed(TEXTS)
    assert counter.seen == []
    assert (embedder.hits_, embedder.misses_) == (len(TEXTS), 0)
    np.testing.assert_array_equal(first, second)


def test_new_process_reuses_vectors_on_disk(tmp_path):
    caching(tmp_path)[0].embed(TEXTS)
    fresh, counter = caching(tmp_path)
    fresh.embed(TEXTS)
    assert counter.seen == []


def test_editing_a_few_texts_embeds_only_those(tmp_path):
    embedder, counter = caching(tmp_path)
    embedder.embed(TEXTS)
    edited = list(TEXTS)
    edited[1] = "What is the capital of Italy?"
    edited[3] = "Summarise this article in one sentence."
    counter.seen.clear()
    vectors = embedder.embed(edited)
    assert sorted(counter.seen) == sorted([edited[1], edited[3]])
    assert (embedder.hits_, embedder.misses_) == (3, 2)
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=32).embed(edited))


def test_duplicates_are_embedded_once_and_order_is_kept(tmp_path):
    embedder, counter = caching(tmp_path)
    embedder.embed(TEXTS[:2])
    texts = [TEXTS[2], TEXTS[0], TEXTS[2], TEXTS[1], TEXTS[0], TEXTS[3]]
    counter.seen.clear()
    vectors = embedder.embed(texts)
    assert sorted(counter.seen) == sorted([TEXTS[2], TEXTS[3]])
    assert (embedder.hits_, embedder.misses_) == (2, 2)
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=32).embed(texts))


def test_empty_input(tmp_path):
    embedder, _ = caching(tmp_path)
    vectors = embedder.embed([])
    assert vectors.shape == (0, 32)
    assert (embedder.hits_, embedder.misses_) == (0, 0)


def test_keeps_the_wrapped_model_id_and_separates_models(tmp_path):
    cache = EmbeddingCache(directory=tmp_path)
    small = CachingEmbedder(embedder=HashingEmbedder(dim=16), cache=cache)
    large = CachingEmbedder(embedder=HashingEmbedder(dim=64), cache=cache)
    assert small.model_id == "hashing-16-0"
    assert isinstance(small, Embedder)
    assert small.embed(TEXTS).shape == (5, 16)
    assert large.embed(TEXTS).shape == (5, 64)
    assert large.misses_ == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hashing-16-0", "hashing-64-0"]


def test_two_caches_on_one_directory_see_each_others_writes(tmp_path):
    left, left_counter = caching(tmp_path)
    right, right_counter = caching(tmp_path)
    left.embed(TEXTS[:3])
    right.embed(TEXTS)  # finds left's three, embeds two
    assert sorted(right_counter.seen) == sorted(TEXTS[3:])
    left_counter.seen.clear()
    left.embed(TEXTS)  # finds right's two although left loaded its shards earlier
    assert left_counter.seen == []
    assert len(shard_files(tmp_path)) == 2


def test_null_cache_always_misses(tmp_path):
    counter = CountingEmbedder()
    embedder = CachingEmbedder(embedder=counter, cache=NullCache())
    embedder.embed(TEXTS)
    embedder.embed(TEXTS)
    assert len(counter.seen) == 2 * len(TEXTS)
    assert embedder.hits_ == 0


def test_corrupt_truncated_and_pickled_shards_are_ignored(tmp_path, caplog):
    embedder, _ = caching(tmp_path)
    embedder.embed(TEXTS[:2])
    folder = shard_files(tmp_path)[0].parent
    good = shard_files(tmp_path)[0].read_bytes()
    (folder / "shard-1-1-aaaa.npy").write_bytes(good[: len(good) // 2])  # killed mid-write
    (folder / "shard-1-1-bbbb.npy").write_bytes(b"\x00garbage" * 10)
    np.save(folder / "shard-1-1-cccc.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    np.save(folder / "shard-1-1-dddd.npy", np.zeros((2, 3), dtype=np.float32))  # not our layout
    fresh, counter = caching(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dataaudit.embed.cache"):
        vectors = fresh.embed(TEXTS)
    assert sorted(counter.seen) == sorted(TEXTS[2:])
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=32).embed(TEXTS))
    warned = " ".join(record.getMessage() for record in caplog.records)
    for name in ("aaaa", "bbbb", "cccc", "dddd"):
        assert f"shard-1-1-{name}.npy" in warned


def test_non_finite_rows_in_a_shard_are_not_served(tmp_path):
    embedder, _ = caching(tmp_path)
    embedder.embed(TEXTS[:2])
    path = shard_files(tmp_path)[0]
    records = np.load(path)
    records["vector"][0] = np.nan
    np.save(path, records)
    fresh, _ = caching(tmp_path)
    vectors = fresh.embed(TEXTS[:2])
    assert (fresh.hits_, fresh.misses_) == (1, 1)
    assert np.all(np.isfinite(vectors))


def test_many_small_writes_are_compacted_without_losing_entries(tmp_path):
    embedder, _ = caching(tmp_path)
    texts = [f"text number {i}" for i in range(40)]
    for text in texts:
        embedder.embed([text])
    assert len(shard_files(tmp_path)) < 32
    fresh, counter = caching(tmp_path)
    vectors = fresh.embed(texts)
    assert counter.seen == []
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=32).embed(texts))


def test_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    counter = CountingEmbedder()
    embedder = CachingEmbedder(embedder=counter, cache=EmbeddingCache(directory=blocker))
    with caplog.at_level(logging.WARNING, logger="dataaudit.embed.cache"):
        vectors = embedder.embed(TEXTS)
    assert vectors.shape == (5, 32)
    assert "could not write" in caplog.text


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_writer_killed_mid_loop_leaves_a_readable_cache(tmp_path):
    writer = textwrap.dedent(
        f"""
        from dataaudit.embed import CachingEmbedder, EmbeddingCache, HashingEmbedder
        embedder = CachingEmbedder(embedder=HashingEmbedder(dim=32), cache=EmbeddingCache(directory={str(tmp_path)!r}))
        i = 0
        while True:
            embedder.embed([f"text {{i}} {{j}}" for j in range(200)])
            i += 1
        """
    )
    process = subprocess.Popen([sys.executable, "-c", writer])
    try:
        deadline = time.monotonic() + 60
        while len(shard_files(tmp_path)) < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert len(shard_files(tmp_path)) >= 5
    texts = [f"text {i} {j}" for i in range(3) for j in range(200)]
    fresh, counter = caching(tmp_path)
    vectors = fresh.embed(texts)
    assert counter.seen == []
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=32).embed(texts))


def test_text_key_is_blake2b_128_and_accepts_lone_surrogates():
    assert len(text_key("abc")) == 16
    assert text_key("abc") != text_key("abd")
    assert text_key("\ud800") != text_key("")


def test_folder_names_are_safe_and_distinct():
    assert folder_name("hashing-256-0") == "hashing-256-0"
    names = {folder_name("org/model-1"), folder_name("org_model-1"), folder_name("../evil"), folder_name(".hidden")}
    assert len(names) == 4
    for name in names:
        assert "/" not in name and not name.startswith(".")


def test_default_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "dataaudit"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says ignore it
    assert default_cache_dir() == Path.home() / ".cache" / "dataaudit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "dataaudit"
