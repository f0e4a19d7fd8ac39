"""Lexical similarity: how much two texts share their actual characters and words.

Embeddings say two texts *mean* the same; that is not enough to call them duplicates — a
paraphrase with a different answer is close in embedding space too. On normalised text
(case, spacing and punctuation gone), character shingles measure overlap cheaply, and a
word-level diff tells a light edit — typos, a short prefix or suffix — from a changed word.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

# difflib's algorithms compiled (the same matching blocks, so the same diffs) and a C++
# optimal-string-alignment distance: a million-row duplicate check makes millions of word diffs.
from cydifflib import SequenceMatcher
from rapidfuzz.distance import OSA

__all__ = [
    "ShingleSets", "changed_words", "char_shingles", "containment", "is_light_edit", "is_typo", "jaccard",
    "normalize_text", "normalize_values", "numbers_in", "pack_texts", "pair_jaccard", "typo_distance",
]

# Words, numbers (with their decimal point) and the operators that change what a text asks:
# "2+2" and "2-2" must not normalise alike, while "card-arrival" and "card arrival" should.
_TOKEN_RE = re.compile(r"\d+(?:\.\d+)*|[^\W\d_]+|[+*/=<>^%]|-(?=\s*\d)")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")


def normalize_text(text: str | None) -> str:
    """Case-folded words, numbers and operators joined by single spaces.

    Case, spacing, punctuation and thousands separators stop mattering; the words,
    numbers and arithmetic a text contains do not.
    """
    if not text:
        return ""
    text = _THOUSANDS_RE.sub("", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(_TOKEN_RE.findall(text))


def normalize_values(values: list[str | None]) -> list[str | None]:
    """:func:`normalize_text` of each value (None stays None), once per distinct value."""
    done: dict[str | None, str | None] = {None: None}
    return [done[value] if value in done else done.setdefault(value, normalize_text(value)) for value in values]


def char_shingles(normalized: str, *, size: int = 5) -> np.ndarray:
    """Sorted unique ids of the text's ``size``-byte shingles (``size`` ≤ 8).

    The bytes of each shingle are packed into one uint64, so ids are exact (no hash
    collisions) and computed without a Python loop. A text shorter than ``size`` is a
    single shingle of itself; the empty text has none.
    """
    if not 1 <= size <= 8:
        raise ValueError(f"shingle size must be in 1..8, got {size}")
    data = np.frombuffer(normalized.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    if data.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if data.size < size:
        data = np.concatenate([data, np.zeros(size - data.size, dtype=np.uint64)])
    windows = np.lib.stride_tricks.sliding_window_view(data, size)
    weights = (np.uint64(256) ** np.arange(size, dtype=np.uint64)).astype(np.uint64)
    return np.unique((windows * weights).sum(axis=1, dtype=np.uint64))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / |a ∪ b| of two sorted unique id arrays; two empty sets are identical."""
    if a.size == 0 and b.size == 0:
        return 1.0
    shared = np.intersect1d(a, b, assume_unique=True).size
    return shared / (a.size + b.size - shared)


def containment(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / min(|a|, |b|): near 1 when one text is the other plus something."""
    if a.size == 0 or b.size == 0:
        return float(a.size == b.size)
    shared = np.intersect1d(a, b, assume_unique=True).size
    return shared / min(a.size, b.size)


def numbers_in(text: str | None) -> tuple[str, ...]:
    """The numbers a text mentions, sorted: two prompts that differ in them ask different things."""
    if not text:
        return ()
    return tuple(sorted(_NUMBER_RE.findall(_THOUSANDS_RE.sub("", text))))


class ShingleSets:
    """Shingle sets of many texts, computed on first use (most rows are never compared).

    At most ``max_cached`` sets are kept, least recently used first out: a set costs about 8
    bytes per character, and in a million-row file of near copies nearly every row gets
    compared, while a row with many copies is compared again and again.
    """

    def __init__(self, *, texts: Sequence[str], size: int = 5, max_cached: int = 100_000):
        self.texts = texts
        self.size = size
        self.max_cached = max_cached
        # An OrderedDict, not a dict: evicting a dict's first key again and again is quadratic
        # (iteration skips the deleted slots), which took 43% of a million-row duplicate check.
        self._shingles: OrderedDict[int, np.ndarray] = OrderedDict()

    def shingles(self, index: int) -> np.ndarray:
        cached = self._shingles.get(index)
        if cached is not None:
            self._shingles.move_to_end(index)
            return cached
        if len(self._shingles) >= self.max_cached:
            self._shingles.popitem(last=False)
        cached = self._shingles[index] = char_shingles(normalize_text(self.texts[index]), size=self.size)
        return cached

    def jaccard(self, i: int, j: int) -> float:
        return jaccard(self.shingles(i), self.shingles(j))

    def containment(self, i: int, j: int) -> float:
        return containment(self.shingles(i), self.shingles(j))


def typo_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts as one edit), exact up to
    two; any larger distance comes back as 3, or as the length difference when that is larger.

    Callers only ask whether the distance is at most two, so the kernel stops there: a
    million-row audit compares millions of replaced passages of near-duplicate candidates.
    """
    distance = OSA.distance(a, b, score_cutoff=_BEYOND_TYPO - 1)
    return distance if distance < _BEYOND_TYPO else max(_BEYOND_TYPO, abs(len(a) - len(b)))


#: What :func:`typo_distance` returns for anything more than two edits apart.
_BEYOND_TYPO = 3


def is_typo(a: str, b: str) -> bool:
    """One slip of the keyboard (two in words longer than six letters), spacing ignored.

    Only words can have typos: a changed number or operator ("2+2" / "2*2") changes the text.
    """
    a, b = a.replace(" ", ""), b.replace(" ", "")
    if a == b:
        return True
    if any(text and not text.isalpha() for text in (a, b)):
        return False
    allowed = 1 if max(len(a), len(b)) <= 6 else 2
    return typo_distance(a, b) <= allowed


def is_light_edit(a: str, b: str, *, max_affix_words: int = 6) -> bool:
    """True when two normalised texts differ only by typos and a short prefix or suffix.

    Normalisation already removed case, spacing and punctuation. A word swapped for another
    word, or words inserted mid-text, is more than a light edit: a different request. So is
    a prefix or suffix longer than ``max_affix_words`` or than half the text it is added to
    ("Explain photosynthesis." + "Use simple words for a child.").
    """
    return changed_words(a, b, max_affix_words=max_affix_words) == 0


#: Words a polite or filler prefix/suffix is made of ("Please answer:", "Hi! Quick question -").
FILLER_WORDS = frozenset(
    "please pls kindly thanks thank you in advance a lot so much very hi hello hey there dear ok okay well so um uh "
    "quick question answer solve this the following help me with can could would will i need want to know tell let "
    "siri alexa google assistant now just".split()
)


def _harmless_affix(words: list[str], shortest: int) -> bool:
    """A prefix or suffix that does not change the request: filler words only, or a small
    share of a long text ("..., this is urgent" on a 14-word message). "for united" on
    "what are the carry on rules" changes the question."""
    return all(word in FILLER_WORDS for word in words) or len(words) <= max(1, shortest // 4)


def changed_words(a: str, b: str, *, max_affix_words: int = 6) -> int:
    """How many words differ between two normalised texts beyond light edits (see is_light_edit)."""
    first, second = a.split(), b.split()
    if first == second:
        return 0
    shortest = min(len(first), len(second))
    max_affix_words = min(max_affix_words, max(2, shortest // 2))
    changed = 0
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, first, second, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        at_start, at_end = i1 == 0 and j1 == 0, i2 == len(first) and j2 == len(second)
        extra = (j2 - j1) - (i2 - i1)
        old, new = first[i1:i2], second[j1:j2]
        if tag in ("insert", "delete") and (at_start or at_end) and abs(extra) <= max_affix_words:
            if _harmless_affix(old or new, shortest):
                continue
        if tag == "replace" and (at_start or at_end) and 0 < abs(extra) <= max_affix_words:
            # a prefix or suffix next to a typo: "please answer natlia" ~ "natalia"
            longer, shorter = (new, old) if extra > 0 else (old, new)
            aligned = longer[abs(extra):] if at_start else longer[: len(longer) - abs(extra)]
            affix = longer[: abs(extra)] if at_start else longer[len(longer) - abs(extra):]
            if is_typo(" ".join(aligned), " ".join(shorter)) and _harmless_affix(affix, shortest):
                continue
        if is_typo(" ".join(old), " ".join(new)):
            continue
        changed += max(len(old), len(new))
    return changed


# --------------------------------------------------------------------------- batched Jaccard


def pack_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of many texts in one buffer, and each text's ``offsets[i]:offsets[i + 1]`` slice.

    The compiled kernels read texts from here: a million Python strings cannot cross into numba.
    """
    encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(data) for data in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def pair_jaccard(buffer: np.ndarray, offsets: np.ndarray, first: np.ndarray, second: np.ndarray, *, size: int = 5,
                 chunk: int = 65_536) -> np.ndarray:
    """Exact character-shingle Jaccard (as :func:`jaccard` of :func:`char_shingles`) of text pairs.

    ``first[p]`` and ``second[p]`` index the texts of :func:`pack_texts`. Compiled, on every
    core: a million-row duplicate check compares millions of pairs, which a Python loop over
    ``np.intersect1d`` turned into most of the audit. Pairs go in chunks; each chunk's rows get
    their sorted shingle sets once (a row is in up to k pairs), then every pair is a merge.
    Exact, not MinHash: candidates already come from the kNN graph, and a sketch's estimate
    would move pairs across the thresholds.
    """
    if not 1 <= size <= 8:
        raise ValueError(f"shingle size must be in 1..8, got {size}")
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    out = np.empty(first.size, dtype=np.float64)
    if not first.size:
        return out
    shingle_rows, merge = _kernels()
    for begin in range(0, first.size, chunk):
        a, b = first[begin:begin + chunk], second[begin:begin + chunk]
        rows, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        starts, stops = offsets[rows], offsets[rows + 1]
        capacity = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(np.maximum(stops - starts - size + 1, 1), out=capacity[1:])
        ids, lengths = shingle_rows(buffer, starts, stops, capacity, size)
        merge(ids, capacity, lengths, inverse[:a.size], inverse[a.size:], out[begin:begin + chunk])
    return out


_KERNELS = None


def _kernels():
    """Compiled on first use, so ``import dataaudit`` never pays numba's start-up."""
    global _KERNELS
    if _KERNELS is None:
        import numba

        @numba.njit(parallel=True, cache=True)
        def shingle_rows(buffer, starts, stops, capacity, size):
            ids = np.empty(capacity[-1], dtype=np.uint64)
            lengths = np.zeros(starts.size, dtype=np.int64)
            for r in numba.prange(starts.size):
                start, length = starts[r], stops[r] - starts[r]
                if length == 0:
                    continue
                count = max(length - size + 1, 1)
                row = ids[capacity[r]:capacity[r] + count]
                for w in range(count):
                    value = np.uint64(0)
                    for k in range(size - 1, -1, -1):
                        byte = np.uint64(buffer[start + w + k]) if w + k < length else np.uint64(0)
                        value = (value << np.uint64(8)) | byte
                    row[w] = value
                row.sort()
                unique = 1
                for w in range(1, count):
                    if row[w] != row[unique - 1]:
                        row[unique] = row[w]
                        unique += 1
                lengths[r] = unique
            return ids, lengths

        @numba.njit(parallel=True, cache=True)
        def merge(ids, capacity, lengths, first, second, out):
            for p in numba.prange(first.size):
                a0, b0 = capacity[first[p]], capacity[second[p]]
                na, nb = lengths[first[p]], lengths[second[p]]
                if na == 0 and nb == 0:
                    out[p] = 1.0
                    continue
                i = j = shared = 0
                while i < na and j < nb:
                    x, y = ids[a0 + i], ids[b0 + j]
                    if x == y:
                        shared += 1
                        i += 1
                        j += 1
                    elif x < y:
                        i += 1
                    else:
                        j += 1
                out[p] = shared / (na + nb - shared)

        _KERNELS = shingle_rows, merge
    return _KERNELS
