"""probes: the packaged general-domain probe and its scoring helpers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dataaudit.embed.base import HashingEmbedder
from dataaudit.finetune import probes
from dataaudit.finetune.probes import (
    answer_matches,
    general_passages,
    general_questions,
    paraphrase_pairs,
    paraphrase_recall_at_1,
    paraphrase_retrieval,
)


def oracle(texts: list[str]) -> np.ndarray:
    """Maps sentence i and paraphrase i to the same one-hot vector: perfect retrieval."""
    index = {text: i for i, pair in enumerate(paraphrase_pairs()) for text in pair}
    vectors = np.zeros((len(texts), len(index)), dtype=np.float32)
    vectors[np.arange(len(texts)), [index[text] for text in texts]] = 1.0
    return vectors


def test_paraphrase_pairs_are_plentiful_distinct_and_reworded():
    pairs = paraphrase_pairs()
    assert len(pairs) >= 150
    texts = [text for pair in pairs for text in pair]
    assert all(isinstance(text, str) and text.strip() == text and text for text in texts)
    assert len({text.lower() for text in texts}) == len(texts)
    # A paraphrase is a rewording, not a copy with one word changed.
    overlaps = [_word_overlap(sentence, paraphrase) for sentence, paraphrase in pairs]
    assert max(overlaps) < 0.8
    assert np.mean(overlaps) < 0.4


def _word_overlap(a: str, b: str) -> float:
    words_a, words_b = (set(re.findall(r"[a-z]+", text.lower())) for text in (a, b))
    return len(words_a & words_b) / len(words_a | words_b)


def test_general_passages_are_short_encyclopedic_paragraphs():
    passages = general_passages()
    assert len(passages) >= 40
    assert len(set(passages)) == len(passages)
    for passage in passages:
        assert 2 <= len(re.findall(r"[.!?](?:\s|$)", passage)) <= 4, passage
        assert 100 <= len(passage) <= 600


def test_general_questions_have_lower_case_answers():
    questions = general_questions()
    assert len(questions) >= 60
    assert len({question for question, _ in questions}) == len(questions)
    assert ("What is the capital of France?", ("paris",)) in questions
    for question, answers in questions:
        assert question.endswith("?")
        assert answers and all(answer == answer.lower().strip() for answer in answers)


def test_loaders_return_fresh_lists_over_one_cached_parse():
    first = paraphrase_pairs()
    first.clear()
    assert len(paraphrase_pairs()) >= 150
    assert probes._paraphrase_pairs.cache_info().currsize == 1


@pytest.mark.parametrize(
    "generation, accepted, expected",
    [
        ("The capital of France is Paris.", ("paris",), True),
        ("PARIS", ("paris",), True),
        ("There are 7 days in a week.", ("7", "seven"), True),
        ("Seven days.", ("7", "seven"), True),
        ("There are twenty  four hours", ("24", "twenty four"), True),
        ("It has twenty-four hours.", ("24", "twenty-four"), True),
        ("It is Parisian food.", ("paris",), False),
        ("17 days", ("7",), False),
        ("About 7.5 days", ("7",), False),
        ("It costs 1,7 euros", ("7",), False),
        ("The price is high", ("ice",), False),
        ("I don't know.", ("paris",), False),
        ("", ("paris",), False),
        ("Paris", (), False),
        ("The answer is 7.", ("7",), True),
        ("George Washington was first.", ("washington", "george washington"), True),
    ],
)
def test_answer_matches_whole_words_ignoring_case(generation, accepted, expected):
    assert answer_matches(generation, accepted) is expected


def test_oracle_embedder_retrieves_every_paraphrase():
    result = paraphrase_retrieval(oracle)
    n = len(paraphrase_pairs())
    assert result == {"recall_at_1": 1.0, "mrr": 1.0, "pairs": n, "hits": [1.0] * n}
    assert paraphrase_recall_at_1(oracle) == 1.0


def test_constant_embedder_gets_no_credit_for_ties():
    result = paraphrase_retrieval(lambda texts: np.ones((len(texts), 4), dtype=np.float32))
    assert result["recall_at_1"] == 0.0
    assert result["mrr"] == pytest.approx(1 / len(paraphrase_pairs()))


def test_mean_reciprocal_rank_counts_second_places():
    pairs = paraphrase_pairs()
    n = len(pairs)
    identity = np.eye(n, dtype=np.float32)
    # Sentence i points at axis i; paraphrase i leans towards axis i+1, so sentence i+1 prefers
    # it over its own paraphrase and every true paraphrase ranks exactly second.
    vectors = {sentence: identity[i] for i, (sentence, _) in enumerate(pairs)}
    vectors.update({paraphrase: identity[(i + 1) % n] + 0.5 * identity[i] for i, (_, paraphrase) in enumerate(pairs)})

    result = paraphrase_retrieval(lambda texts: np.stack([vectors[text] for text in texts]))
    assert result["recall_at_1"] == 0.0
    assert result["mrr"] == pytest.approx(0.5)


def test_hashing_embedder_finds_some_paraphrases_but_not_most():
    recall = paraphrase_recall_at_1(lambda texts: HashingEmbedder(dim=512).embed(texts))
    assert 0.05 < recall < 0.5  # lexical overlap alone: far below a sentence encoder


def test_embed_must_return_one_finite_row_per_text():
    with pytest.raises(ValueError, match="one row per text"):
        paraphrase_retrieval(lambda texts: np.ones((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        paraphrase_retrieval(lambda texts: np.full((len(texts), 4), np.nan))


@pytest.mark.slow
def test_minilm_retrieves_most_but_not_all_paraphrases():
    from dataaudit.embed.sentence_transformers import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    result = paraphrase_retrieval(embedder.embed)
    # Hard enough that forgetting can show, easy enough that a good encoder clearly succeeds.
    assert 0.8 <= result["recall_at_1"] <= 0.98
    assert result["recall_at_1"] <= result["mrr"] <= 1.0
