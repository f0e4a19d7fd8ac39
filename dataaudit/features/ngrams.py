"""Word n-grams as hashes, and the in-order alignment that confirms a shared passage.

Decontamination compares every training text with every test item, so the comparison must be
array work: each text becomes normalised word tokens (NFKC, lower case, punctuation and spacing
gone), each token a 64-bit hash, each run of ``n`` tokens one rolling hash, and texts that share
n-grams are found by sorted searches over uint64 arrays, never by Python sets per pair. Only the
few candidate pairs that share enough n-grams are aligned word by word (:func:`align`), which
says how much of the test item the training text really contains, in order, and where.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from dataaudit.features.lexical import is_typo

__all__ = [
    "Alignment", "TokenArrays", "Tokens", "align", "ngram_hashes", "shared_ngram_counts", "token_arrays", "tokenize",
]

#: A word or a number: letters and digits of any script; underscores and punctuation separate,
#: except thousands separators ("1,500" and "1500" are one number).
TOKEN_PATTERN = r"\d{1,3}(?:,\d{3})+\b|[^\W_]+"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
#: Odd multiplier of the rolling hash; uint64 arithmetic wraps, which is what a hash wants.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Tokens:
    """One text's normalised tokens with their character offsets in the original text."""

    words: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)


def tokenize(text: str | None) -> Tokens:
    """Normalised words of ``text`` (NFKC, case-folded) and where each stands in the original."""
    words, starts, ends = [], [], []
    for match in _TOKEN_RE.finditer(text or ""):
        words.append(unicodedata.normalize("NFKC", match.group()).casefold().replace(",", ""))
        starts.append(match.start())
        ends.append(match.end())
    return Tokens(tuple(words), tuple(starts), tuple(ends))


@dataclass(frozen=True)
class TokenArrays:
    """Token hashes of many texts, flat: text ``i`` owns ``hashes[offsets[i]:offsets[i + 1]]``."""

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def token_arrays(texts: Sequence[str | None]) -> TokenArrays:
    """Hash every normalised token of every text, vectorised in polars (the same tokens as :func:`tokenize`)."""
    import polars as pl

    series = pl.Series("text", list(texts), dtype=pl.String).fill_null("")
    tokens = series.str.normalize("NFKC").str.to_lowercase().str.extract_all(TOKEN_PATTERN)
    lengths = tokens.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = tokens.explode().drop_nulls().str.replace_all(",", "", literal=True)
    hashes = flat.hash(seed=0).to_numpy().astype(np.uint64) if flat.len() else np.zeros(0, dtype=np.uint64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return TokenArrays(hashes=hashes, offsets=offsets)


def ngram_hashes(tokens: TokenArrays, n: int, *, texts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rolling hashes of every run of ``n`` tokens inside one text, and the text each belongs to.

    ``texts`` restricts the work to those text ids. Texts shorter than ``n`` have none.
    """
    if n < 1:
        raise ValueError(f"n-gram size must be at least 1, got {n}")
    lengths = tokens.lengths
    ids = np.arange(lengths.size, dtype=np.int64) if texts is None else np.asarray(texts, dtype=np.int64)
    counts = np.maximum(lengths[ids] - n + 1, 0)
    owner = np.repeat(ids, counts)
    if owner.size == 0:
        return np.zeros(0, dtype=np.uint64), owner
    # Start of each window: the text's first token plus the window's rank within the text.
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = tokens.offsets[owner] + (np.arange(owner.size, dtype=np.int64) - first)
    hashes = np.zeros(owner.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            hashes = hashes * _MULTIPLIER + tokens.hashes[starts + k]
    return hashes, owner


def shared_ngram_counts(query: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(query_text, reference_text, shared)``: how many distinct n-grams each pair of texts shares.

    Both inputs are ``(hashes, owner)`` from :func:`ngram_hashes`. Query n-grams absent from the
    reference are dropped first with one ``np.isin``; the rest meet the reference through a
    sorted search, so the work is proportional to the matches, not to the pairs of texts.
    """
    empty = np.zeros(0, dtype=np.int64)
    r_hash, r_owner = _distinct(*reference)
    q_hash, q_owner = query
    if q_hash.size == 0 or r_hash.size == 0:
        return empty, empty, empty
    keep = np.isin(q_hash, r_hash)  # before sorting the (large) query side, not after
    q_hash, q_owner = _distinct(q_hash[keep], q_owner[keep])
    order = np.argsort(r_hash, kind="stable")
    r_hash, r_owner = r_hash[order], r_owner[order]
    left = np.searchsorted(r_hash, q_hash, side="left")
    right = np.searchsorted(r_hash, q_hash, side="right")
    width = right - left
    query_ids = np.repeat(q_owner, width)
    # Positions left[i] .. right[i]-1 for every query n-gram, without a Python loop.
    positions = np.repeat(left - (np.cumsum(width) - width), width) + np.arange(width.sum(), dtype=np.int64)
    reference_ids = r_owner[positions]
    if query_ids.size == 0:
        return empty, empty, empty
    pairs = np.unique(np.stack([query_ids, reference_ids], axis=1), axis=0, return_counts=True)
    return pairs[0][:, 0], pairs[0][:, 1], pairs[1].astype(np.int64)


def _distinct(hashes: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (hash, text) once: a phrase repeated inside one text counts once."""
    if hashes.size == 0:
        return hashes, owner
    order = np.lexsort((owner, hashes))
    hashes, owner = hashes[order], owner[order]
    new = np.ones(hashes.size, dtype=bool)
    new[1:] = (hashes[1:] != hashes[:-1]) | (owner[1:] != owner[:-1])
    return hashes[new], owner[new]


@dataclass(frozen=True)
class Alignment:
    """How much of a test item a training text contains, in order.

    ``coverage`` is the share of the item's tokens aligned with equal tokens (or typos of them)
    in matched runs of at least ``min_block`` tokens. The spans are token ranges
    ``[start, end)`` from the first to the last aligned token on each side; ``exact`` says the
    text's span is the item word for word.
    """

    coverage: float
    item_span: tuple[int, int]
    text_span: tuple[int, int]
    exact: bool


NO_ALIGNMENT = Alignment(coverage=0.0, item_span=(0, 0), text_span=(0, 0), exact=False)


def align(item: Sequence[str], text: Sequence[str], *, min_block: int = 3) -> Alignment:
    """Align test ``item`` tokens inside training ``text`` tokens (see :class:`Alignment`).

    A replaced stretch counts as matched when it is word for word a typo of the item's words:
    light edits keep the whole item, a changed word or number does not.
    """
    if not item or not text:
        return NO_ALIGNMENT
    if list(item) == list(text):
        return Alignment(coverage=1.0, item_span=(0, len(item)), text_span=(0, len(text)), exact=True)
    # Runs of equal words, joined across stretches that are word for word typos of each other.
    runs: list[list[int]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, list(item), list(text), autojunk=False).get_opcodes():
        if tag == "equal":
            start = j1
        elif tag == "replace" and (start := _typo_stretch(item[i1:i2], text[j1:j2], j1)) is not None:
            pass
        else:
            continue
        if runs and runs[-1][0] + runs[-1][2] == i1 and runs[-1][1] + runs[-1][2] == start:
            runs[-1][2] += i2 - i1
        else:
            runs.append([i1, start, i2 - i1])
    runs = [run for run in runs if run[2] >= min(min_block, len(item))]
    if not runs:
        return NO_ALIGNMENT
    covered = sum(size for _, _, size in runs)
    item_span = (runs[0][0], runs[-1][0] + runs[-1][2])
    text_span = (runs[0][1], runs[-1][1] + runs[-1][2])
    exact = list(text[text_span[0]:text_span[1]]) == list(item)
    return Alignment(coverage=covered / len(item), item_span=item_span, text_span=text_span, exact=exact)


def _typo_stretch(item_words: Sequence[str], text_words: Sequence[str], offset: int) -> int | None:
    """Where in ``text_words`` (plus ``offset``) the item's words stand as typos, word for word:
    the whole stretch, its end (after a prefix: "quick question whhat" for "what") or its start."""
    k = len(item_words)
    if k > len(text_words):
        return None
    for start in sorted({0, len(text_words) - k}, reverse=True):
        if all(is_typo(x, y) for x, y in zip(item_words, text_words[start:start + k])):
            return offset + start
    return None
