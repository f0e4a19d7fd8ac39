"""Lexical similarity helpers: normalisation, shingles, Jaccard, numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.lexical import (
    ShingleSets,
    char_shingles,
    containment,
    is_light_edit,
    is_typo,
    jaccard,
    normalize_text,
    numbers_in,
    typo_distance,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is  2+2?", "what is 2 + 2"),
        ("WHAT IS 2 + 2 ?!", "what is 2 + 2"),
        ("What is 2-2?", "what is 2 - 2"),
        ("Card-Arrival", "card arrival"),
        ("card_arrival", "card arrival"),
        ("It costs $1,200.50!", "it costs 1200.50"),
        ("¿Qué tal?", "qué tal"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_shingles_are_sorted_unique_and_exact():
    shingles = char_shingles("abcdeabcde", size=5)
    assert shingles.dtype == np.uint64
    assert np.all(np.diff(shingles.astype(np.int64)) > 0) or shingles.size == 1
    assert shingles.size == 5  # abcde, bcdea, cdeab, deabc, eabcd
    assert char_shingles("", size=5).size == 0
    assert char_shingles("ab", size=5).size == 1


def test_shingle_size_is_bounded():
    with pytest.raises(ValueError):
        char_shingles("text", size=9)


def test_jaccard_and_containment():
    a = char_shingles("the quick brown fox")
    b = char_shingles("please answer the quick brown fox")
    assert jaccard(a, a) == 1.0
    assert 0.0 < jaccard(a, b) < containment(a, b) == 1.0
    empty = char_shingles("")
    assert jaccard(empty, empty) == 1.0 and jaccard(a, empty) == 0.0
    assert containment(empty, empty) == 1.0 and containment(a, empty) == 0.0


def test_a_typo_keeps_long_texts_similar():
    text = normalize_text("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.")
    typo = normalize_text("Natalia sold clips to 48 of her freinds in April, and then she sold half as many clips in May.")
    assert jaccard(char_shingles(text), char_shingles(typo)) > 0.8


def test_numbers_in():
    assert numbers_in("He had 1,200 apples, 3.5 pears and 48 plums, then 48 more.") == ("1200", "3.5", "48", "48")
    assert numbers_in("no numbers") == () == numbers_in(None)


def test_shingle_sets_compute_lazily_and_agree_with_the_functions():
    texts = ["What is the capital of France?", "what is the capital of france", "Name a primary colour."]
    sets = ShingleSets(texts=texts)
    assert sets.jaccard(0, 1) == 1.0
    assert sets.jaccard(0, 2) == jaccard(char_shingles(normalize_text(texts[0])), char_shingles(normalize_text(texts[2])))
    assert 2 in sets._shingles and len(sets._shingles) == 3


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_similarities_are_symmetric_and_in_range(first, second):
    a, b = char_shingles(normalize_text(first)), char_shingles(normalize_text(second))
    assert 0.0 <= jaccard(a, b) == jaccard(b, a) <= 1.0
    assert 0.0 <= containment(a, b) == containment(b, a) <= 1.0
    assert normalize_text(normalize_text(first)) == normalize_text(first)


@pytest.mark.parametrize(
    ("first", "second", "light"),
    [
        ("What is the capital of France?", "Please answer: What is the capital of Frnace?", True),
        ("Natalia sold clips to 48 of her friends", "Please answer: natlia sold clips to 48 of her friends", True),
        ("Natalia sold clips to her friends in May", "Natalia sold clips to her friends in May. Thanks a lot!", True),
        ("altogether they sold", "all together they sold", True),
        ("I want a refund", "I want refund", True),
        ("how do i say hello in french", "how do you say hello in french", False),
        ("how would i say hello in french", "how should i say hello in french", False),
        ("What are tourist attractions in Reims ?", "What are the names of the tourist attractions in Reims ?", False),
        ("What is 2+2?", "What is 2*2?", False),
        ("It costs 48 dollars", "It costs 46 dollars", False),
        ("short", "short " + "and then a very long tail of many more words", False),
    ],
)
def test_is_light_edit(first, second, light):
    assert is_light_edit(normalize_text(first), normalize_text(second)) is light
    assert is_light_edit(normalize_text(second), normalize_text(first)) is light


@pytest.mark.parametrize(("a", "b", "distance"), [("friends", "freinds", 1), ("would", "should", 2), ("", "abc", 3), ("same", "same", 0)])
def test_typo_distance(a, b, distance):
    assert typo_distance(a, b) == distance


def test_is_typo_scales_with_word_length_and_ignores_spacing():
    assert is_typo("freinds", "friends") and is_typo("all together", "altogether")
    assert not is_typo("would", "should")  # two edits in a short word: another word
    assert is_typo("recieved", "received") and not is_typo("2", "3")


def test_an_affix_may_not_outweigh_the_text():
    assert not is_light_edit("explain photosynthesis", "explain photosynthesis use simple words for a child")
    assert is_light_edit("explain how photosynthesis works in plants", "please explain how photosynthesis works in plants")


@pytest.mark.parametrize(
    ("a", "b", "light"),
    [
        ("what are the carry on rules", "what are the carry on rules please", True),
        ("what are the carry on rules", "tell me what are the carry on rules", True),
        ("what are the carry on rules", "what are the carry on rules for united", False),
        ("what interest rate am i getting", "what interest rate am i getting from citigroup", False),
        ("my card got stuck in the atm in valencia and the machine kept it",
         "hello my card got stuck in the atm in valencia and the machine kept it this is urgent", True),
    ],
)
def test_only_harmless_prefixes_and_suffixes_are_light_edits(a, b, light):
    from dataaudit.features.lexical import is_light_edit

    assert is_light_edit(a, b) is light


def _full_osa(a: str, b: str) -> int:
    """The textbook quadratic optimal-string-alignment distance, as a reference."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


@given(st.text(alphabet="abc", max_size=12), st.text(alphabet="abc", max_size=12))
def test_typo_distance_is_exact_up_to_two_and_above_two_beyond(a, b):
    """The banded distance agrees with the full one wherever the answer matters (at most two)."""
    full, banded = _full_osa(a, b), typo_distance(a, b)
    assert banded == full if full <= 2 else banded > 2


def test_shingle_sets_keep_a_bounded_cache_and_still_answer_every_row():
    texts = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran far away", "the cat sat on the mat"]
    bounded, unbounded = ShingleSets(texts=texts, max_cached=2), ShingleSets(texts=texts)
    pairs = [(0, 1), (2, 3), (0, 3), (1, 2), (0, 1)]
    assert [bounded.jaccard(i, j) for i, j in pairs] == [unbounded.jaccard(i, j) for i, j in pairs]
    assert len(bounded._shingles) == 2 and len(unbounded._shingles) == 4
    assert bounded.jaccard(0, 3) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab cdé✓1", max_size=40), min_size=1, max_size=12), st.integers(1, 8), st.data())
def test_pair_jaccard_kernel_equals_the_exact_python_jaccard(texts, size, data):
    from dataaudit.features.lexical import pack_texts, pair_jaccard

    normalized = [normalize_text(text) if k % 2 else text for k, text in enumerate(texts)]
    pairs = data.draw(st.lists(st.tuples(st.integers(0, len(texts) - 1), st.integers(0, len(texts) - 1)), max_size=30))
    first = np.array([i for i, _ in pairs], dtype=np.int64)
    second = np.array([j for _, j in pairs], dtype=np.int64)
    buffer, offsets = pack_texts(normalized)
    expected = [jaccard(char_shingles(normalized[i], size=size), char_shingles(normalized[j], size=size)) for i, j in pairs]
    # chunk=3 makes several chunks share and split rows.
    assert pair_jaccard(buffer, offsets, first, second, size=size, chunk=3).tolist() == expected


def test_pair_jaccard_rejects_a_bad_shingle_size_and_handles_no_pairs():
    from dataaudit.features.lexical import pack_texts, pair_jaccard

    buffer, offsets = pack_texts(["abc", ""])
    assert pair_jaccard(buffer, offsets, np.zeros(0), np.zeros(0)).size == 0
    with pytest.raises(ValueError):
        pair_jaccard(buffer, offsets, np.zeros(1), np.zeros(1), size=9)
