"""Word n-gram hashes, their vectorised intersection, and the in-order alignment."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.ngrams import (
    align,
    ngram_hashes,
    shared_ngram_counts,
    token_arrays,
    tokenize,
)

WORDS = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "12", "7", "omega"]), min_size=0, max_size=12)
TEXT_ALPHABET = st.text(alphabet="abcdefgh XYZ 0123 .,!?-\n", max_size=60)  # "1,000" included


def test_tokenize_normalises_case_punctuation_and_spacing_and_keeps_offsets():
    text = "Hello,   WORLD! It's 1,000\tapples_and 2,5 pears."
    tokens = tokenize(text)
    assert tokens.words == ("hello", "world", "it", "s", "1000", "apples", "and", "2", "5", "pears")
    assert [text[s:e] for s, e in zip(tokens.starts, tokens.ends)] == ["Hello", "WORLD", "It", "s", "1,000", "apples",
                                                                        "and", "2", "5", "pears"]
    assert tokenize("It costs $1,500.").words == tokenize("it costs 1500").words


@settings(deadline=None)
@given(st.lists(st.sampled_from(["Cat", "sat", "ON", "the", "mat", "42", "Über"]), min_size=1, max_size=10),
       st.lists(st.sampled_from([" ", "  ", "\n", ", ", "! ", " - ", "... "]), min_size=10, max_size=10))
def test_case_punctuation_and_spacing_never_change_the_tokens(words, separators):
    plain = " ".join(words)
    edited = "".join(word.upper() + separator for word, separator in zip(words, separators))
    assert tokenize(plain).words == tokenize(edited).words
    assert tokenize(plain).words == tuple(word.casefold() for word in words)


@settings(max_examples=50, deadline=None)
@given(st.lists(TEXT_ALPHABET, min_size=1, max_size=6))
def test_vectorised_tokens_agree_with_tokenize(texts):
    arrays = token_arrays(texts)
    assert arrays.lengths.tolist() == [len(tokenize(text)) for text in texts]
    flat = [word for text in texts for word in tokenize(text).words]
    # Equal words hash equally and different words differently (no collision among a handful).
    for i in range(len(flat)):
        for j in range(len(flat)):
            assert (arrays.hashes[i] == arrays.hashes[j]) == (flat[i] == flat[j])


def test_ngram_hashes_stay_inside_each_text():
    arrays = token_arrays(["a b c", "c d", "", "a b c d"])
    hashes, owner = ngram_hashes(arrays, 2)
    assert owner.tolist() == [0, 0, 1, 3, 3, 3]
    assert hashes[0] == hashes[3] and hashes[1] == hashes[4]  # "a b", "b c" in texts 0 and 3
    assert hashes[2] == hashes[5]  # "c d"
    _, owner = ngram_hashes(arrays, 3, texts=np.array([3]))
    assert owner.tolist() == [3, 3]


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=5), st.lists(WORDS, min_size=1, max_size=5), st.integers(1, 3))
def test_shared_ngram_counts_equal_python_sets(query, reference, n):
    def grams(words):
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    q_arrays, r_arrays = token_arrays([" ".join(w) for w in query]), token_arrays([" ".join(w) for w in reference])
    q_ids, r_ids, shared = shared_ngram_counts(ngram_hashes(q_arrays, n), ngram_hashes(r_arrays, n))
    got = {(int(q), int(r)): int(s) for q, r, s in zip(q_ids, r_ids, shared)}
    expected = {(i, j): len(grams(a) & grams(b)) for i, a in enumerate(query) for j, b in enumerate(reference)}
    assert got == {key: value for key, value in expected.items() if value}


def test_align_finds_an_item_inside_a_longer_text_with_a_typo():
    item = tokenize("Natalia sold clips to 48 of her friends in April and May").words
    text = tokenize("Please help me. natalia sold clips to 48 of her freinds in april and may. Thanks a lot").words
    alignment = align(item, text)
    assert alignment.coverage == 1.0 and not alignment.exact
    assert alignment.item_span == (0, len(item)) and alignment.text_span == (3, 3 + len(item))


def test_align_a_typo_right_after_a_prefix_is_covered():
    item = tokenize("What is the recommended pattern for creating games in Godot?").words
    alignment = align(item, tokenize("Quick question - whhat is the recommended pattern for creating games in godot").words)
    assert alignment.coverage == 1.0 and alignment.text_span == (2, 12)


def test_align_a_changed_word_or_number_is_not_covered():
    item = tokenize("the train leaves at 9 and arrives at 11 in the evening").words
    alignment = align(item, tokenize("the train leaves at 8 and arrives at 11 in the evening").words)
    assert alignment.coverage == (len(item) - 1) / len(item)
    assert align(item, item).exact and align(item, item).coverage == 1.0


def test_align_a_shared_stock_phrase_covers_little_of_a_long_item():
    item = tokenize("Write a function that takes a string as input and returns the number of vowels, counting y "
                    "only when it ends the word, and ignoring case in every comparison").words
    text = tokenize("Create a Python function that takes a string as input and returns the reversed string").words
    assert align(item, text).coverage < 0.5
