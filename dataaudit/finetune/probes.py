"""A general-domain probe shipped with the package, for measuring forgetting.

Fine-tuning on a narrow dataset can erode what a model could do before. Comparing the base model
and the fine-tuned one on the same fixed, general material makes that loss visible:

- :func:`paraphrase_pairs` for sentence encoders: can the model still match everyday sentences
  to their rewordings (:func:`paraphrase_retrieval`)? A share of the pairs is deliberately hard
  (paraphrases that share few words; near-twin sentences that differ in one detail) so the base
  all-MiniLM-L6-v2 scores about 0.94 recall@1, not 1.0, leaving room for a drop to show.
- :func:`general_passages` for language models: perplexity on short encyclopedic text.
- :func:`general_questions` for instruction models: very easy questions that a small instruct
  model often answers, checked with :func:`answer_matches`.

All text in ``probe_data/`` was written for dataaudit (no dataset was copied), so it ships under
the package's licence. Files are validated on first load and cached.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]

_DATA_PACKAGE = "dataaudit.finetune"
_DATA_FOLDER = "probe_data"


def paraphrase_pairs() -> list[tuple[str, str]]:
    """``(sentence, paraphrase)`` pairs on everyday topics, each paraphrase worded differently."""
    return list(_paraphrase_pairs())


def general_passages() -> list[str]:
    """Short encyclopedic passages (2-4 sentences) for perplexity on general English."""
    return list(_general_passages())


def general_questions() -> list[tuple[str, tuple[str, ...]]]:
    """Easy general-knowledge questions with their accepted lower-case short answers."""
    return list(_general_questions())


def answer_matches(generation: str, accepted: Sequence[str]) -> bool:
    """Whether ``generation`` contains any accepted answer as a whole word, ignoring case.

    Whole words, so "7" is not found in "17" or "7.5" and "ice" not in "price"; runs of
    whitespace count as one space, so "twenty  four" still matches "twenty four".
    """
    text = _normalize(generation)
    return any(_answer_pattern(_normalize(answer)).search(text) for answer in accepted if answer.strip())


def paraphrase_retrieval(embed: Embed) -> dict[str, Any]:
    """Retrieve each sentence's paraphrase among all paraphrases by cosine similarity.

    ``embed`` maps a list of texts to L2-normalised rows (rows are re-normalised here anyway, so
    an unnormalised encoder is not silently favoured). Ties count against the sentence: an
    encoder that maps everything to the same vector scores 0, not 1. Returns ``recall_at_1``
    (share ranked first), ``mrr`` (mean reciprocal rank of the true paraphrase), ``pairs``, and
    ``hits`` (per pair, 1.0 when ranked first): the paired sample a before/after test needs.
    """
    from dataaudit.embed.base import normalize_rows

    pairs = _paraphrase_pairs()
    sentences = _embedded(embed, [sentence for sentence, _ in pairs])
    paraphrases = _embedded(embed, [paraphrase for _, paraphrase in pairs])
    if sentences.shape[1] != paraphrases.shape[1]:
        raise ValueError(f"embed returned {sentences.shape[1]} and {paraphrases.shape[1]} dimensions for two calls")
    similarity = normalize_rows(sentences) @ normalize_rows(paraphrases).T
    own = np.diag(similarity)
    rank = (similarity >= own[:, None]).sum(axis=1)  # includes the pair itself, so rank >= 1
    return {
        "recall_at_1": float(np.mean(rank == 1)),
        "mrr": float(np.mean(1.0 / rank)),
        "pairs": len(pairs),
        "hits": (rank == 1).astype(float).tolist(),
    }


def paraphrase_recall_at_1(embed: Embed) -> float:
    """Share of sentences whose nearest paraphrase is their own (see :func:`paraphrase_retrieval`)."""
    return paraphrase_retrieval(embed)["recall_at_1"]


def _embedded(embed: Embed, texts: list[str]) -> np.ndarray:
    vectors = np.asarray(embed(texts), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(f"embed must return one row per text: {len(texts)} texts gave shape {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise ValueError("embed returned NaN or infinite values")
    return vectors


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split())


@lru_cache(maxsize=1024)
def _answer_pattern(answer: str) -> re.Pattern[str]:
    # Not inside a longer word, nor part of a decimal or a thousands-separated number.
    return re.compile(rf"(?<!\w)(?<!\d[.,]){re.escape(answer)}(?!\w)(?![.,]\d)")


@lru_cache(maxsize=1)
def _paraphrase_pairs() -> tuple[tuple[str, str], ...]:
    records = _read("paraphrase_pairs.jsonl", ("sentence", "paraphrase"))
    pairs = tuple((record["sentence"], record["paraphrase"]) for record in records)
    _require_unique("paraphrase_pairs.jsonl", [text for pair in pairs for text in pair])
    return pairs


@lru_cache(maxsize=1)
def _general_passages() -> tuple[str, ...]:
    passages = tuple(record["passage"] for record in _read("general_passages.jsonl", ("passage",)))
    _require_unique("general_passages.jsonl", passages)
    return passages


@lru_cache(maxsize=1)
def _general_questions() -> tuple[tuple[str, tuple[str, ...]], ...]:
    questions = []
    for number, record in enumerate(_read("general_questions.jsonl", ("question",)), start=1):
        answers = record.get("answers")
        if not isinstance(answers, list) or not answers or not all(_is_text(answer) for answer in answers):
            raise ValueError(f"general_questions.jsonl record {number}: 'answers' must be a non-empty list of strings")
        if any(answer != _normalize(answer) for answer in answers):
            raise ValueError(f"general_questions.jsonl record {number}: answers must be lower-case and single-spaced")
        questions.append((record["question"], tuple(answers)))
    _require_unique("general_questions.jsonl", [question for question, _ in questions])
    return tuple(questions)


def _read(name: str, text_fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Parse one JSONL file from ``probe_data/``, insisting on non-empty ``text_fields``."""
    content = (resources.files(_DATA_PACKAGE) / _DATA_FOLDER / name).read_text(encoding="utf-8")
    records = [json.loads(line) for line in content.splitlines() if line.strip()]
    for number, record in enumerate(records, start=1):
        for field in text_fields:
            if not _is_text(record.get(field)):
                raise ValueError(f"{name} record {number}: {field!r} must be a non-empty string")
    if not records:
        raise ValueError(f"{name} is empty")
    return records


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _require_unique(name: str, texts: Sequence[str]) -> None:
    seen: set[str] = set()
    for text in texts:
        key = _normalize(text)
        if key in seen:
            raise ValueError(f"{name} contains {text!r} twice")
        seen.add(key)
