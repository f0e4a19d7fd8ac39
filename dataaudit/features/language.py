"""Language identification for the language check, offline, with an explicit "undetermined".

py3langid (a maintained fork of langid.py; 140 language classes, its model ships in the wheel) was
chosen over lingua after measuring both on the sentences in ``tests/checks/multilingual.py``
(12 languages, 39 long and 26 short): py3langid 100% long / 100% short at 0.2-0.4 ms a text and
~1 s to load; lingua 100% / 96% in its low-accuracy mode (~1.7 ms a text) and 100% / 100% in
high-accuracy mode at ~6 ms a text and 20-28 s to load (``bench/bench_chat_faults.py
--compare-language-id``, on a busy 2-core machine).

A text too short to judge (a few words), code, numbers or a label is ``None`` (undetermined),
never a guess: only the prose outside code blocks, URLs, identifiers and code lines counts, and
the model's normalised probability must reach ``min_confidence``. The gating runs as polars
string expressions over all texts; the classifier is py3langid's own model, walked for all texts
at once with numpy (:func:`classify`; the same answers as ``py3langid.classify``, ~8x faster).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

#: Minimum words of letters (2+ letters each) outside code for a text in a spaced script.
MIN_WORDS = 4
#: Minimum letters overall, and minimum CJK / kana / hangul characters for unspaced scripts.
MIN_LETTERS = 20
MIN_CJK = 6
#: Minimum share of letters among the non-space characters left after removing code.
MIN_LETTER_SHARE = 0.6
#: Most code-and-formula symbols per letter in prose (``(``, ``=``, ``;``, ``#``...); more is code or maths.
MAX_SYMBOL_SHARE = 0.08
#: Characters of cleaned text handed to the classifier: language shows in the first sentences.
MAX_CHARS = 400
#: Languages py3langid confuses with a close neighbour are reported as one.
ALIASES = {
    "nb": "no",
    "nn": "no",
    "da": "no",
    "ms": "id",
    "bs": "hr",
    "sr": "hr",
    "sk": "cs",
    "gl": "es",
    "an": "es",
    "oc": "fr",
    "lb": "de",
    "mt": "it",
    "wa": "fr",
}
#: py3langid classes folded into a language (regional varieties and creoles it confuses with
#: their base language); other classes without a two-letter ISO 639-1 code are not reported, so
#: their probability never outvotes a major language. ``zxx`` is "no linguistic content".
FOLD = {"pcm": "en", "arz": "ar", "ary": "ar", "wuu": "zh", "yue": "zh", "gug": None, "zxx": None}
#: English names, to let a prompt that asks for a language ("answer in French") through.
NAMES = {
    "en": "english",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "ru": "russian",
    "pl": "polish",
    "tr": "turkish",
    "zh": "chinese",
    "ja": "japanese",
    "ko": "korean",
    "ar": "arabic",
    "hi": "hindi",
    "sv": "swedish",
    "no": "norwegian",
    "fi": "finnish",
    "cs": "czech",
    "hr": "croatian",
    "uk": "ukrainian",
    "el": "greek",
    "he": "hebrew",
    "vi": "vietnamese",
    "id": "indonesian",
    "th": "thai",
    "fa": "persian",
    "ro": "romanian",
    "hu": "hungarian",
    "bg": "bulgarian",
    "la": "latin",
}

#: Removed before judging (Rust regex syntax, run by polars over all texts at once).
_CODE_BLOCK = r"(?s)```.*?(```|$)"
_INLINE_CODE = r"`[^`\n]*`"
_URL = r"https?://\S+|www\.\S+|\S+@\S+\.\w+"
_CODE_LINE = (
    r"(?mi)^[ \t]*(def |class |import |from \S+ import|return\b|for .* in |if .*:$|#include|select |"
    r"function\b|var |let |const |public |private |[{}]|</?\w+>).*$"
)
_IDENTIFIER = r"\b\w*(_|\p{Ll}\p{Lu})\w*\b"  # snake_case, camelCase
_CJK = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
#: Characters dense in code and formulas, rare in prose: bare code (no fences) has many per letter.
_CODE_SYMBOL = r"[{}()\[\];=<>#*/\\|&%$^~+]"


def prose_frame(texts: Sequence[str | None]):
    """Per text: its prose (code blocks, URLs, identifiers and code lines removed, whitespace
    collapsed, cut to :data:`MAX_CHARS`) and whether it holds enough prose to tell a language."""
    import polars as pl

    text = pl.col("text").fill_null("").str.slice(0, 8 * MAX_CHARS)  # the language shows early; cleaning is per char
    prose = (
        text.str.replace_all(_CODE_BLOCK, " ")
        .str.replace_all(_INLINE_CODE, " ")
        .str.replace_all(_URL, " ")
        .str.replace_all(_CODE_LINE, " ")
        .str.replace_all(_IDENTIFIER, " ")
    )
    frame = pl.DataFrame({"text": pl.Series(list(texts), dtype=pl.String)}).with_columns(prose.alias("prose"))
    prose = pl.col("prose")
    letters = prose.str.count_matches(r"\p{L}")
    visible = prose.str.len_chars() - prose.str.count_matches(r"\s")
    symbols = prose.str.count_matches(_CODE_SYMBOL)
    spaced = (
        (letters >= MIN_LETTERS)
        & (letters >= MIN_LETTER_SHARE * visible)
        & (symbols <= MAX_SYMBOL_SHARE * letters)
        & (prose.str.count_matches(r"[\p{L}\p{M}]{2,}") >= MIN_WORDS)
    )
    return frame.select(
        prose.str.replace_all(r"\s+", " ").str.strip_chars().str.slice(0, MAX_CHARS).alias("prose"),
        ((prose.str.count_matches(_CJK) >= MIN_CJK) | spaced).alias("determinable"),
    )


@functools.lru_cache(maxsize=1)
def _model():
    """py3langid's model as numpy arrays: DFA transitions, state → feature, and naive Bayes tables."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return (
        np.asarray(identifier.tk_nextmove, dtype=np.int64),
        np.asarray(identifier._rowbase, dtype=np.int64),
        np.asarray(identifier.tk_output, dtype=np.int64),
        np.asarray(identifier.nb_ptc, dtype=np.float32),
        np.asarray(identifier.nb_pc, dtype=np.float32),
        list(identifier.nb_classes),
        list(identifier._alias_pairs),
    )


def _walk(
    encoded: list[bytes], nextmove: np.ndarray, rowbase: np.ndarray, output: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Feature hits of py3langid's byte automaton for all texts in lockstep: (text, feature) pairs.

    Texts are sorted longest first, so step ``p`` advances only the texts still running: one
    numpy step per byte position instead of one Python step per byte.
    """
    lengths = np.array([len(item) for item in encoded], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    ordered = lengths[order]
    width = int(ordered[0]) if ordered.size else 0
    padded = np.zeros((len(encoded), max(width, 1)), dtype=np.int64)
    if width:
        flat = np.frombuffer(b"".join(encoded[index] for index in order), dtype=np.uint8)
        owners = np.repeat(np.arange(len(encoded)), ordered)
        columns = np.arange(flat.size) - np.repeat(np.cumsum(ordered) - ordered, ordered)
        padded[owners, columns] = flat
    running = len(encoded) - np.searchsorted(ordered[::-1], np.arange(width), side="right")
    states = np.zeros(len(encoded), dtype=np.int64)
    texts, features = [], []
    for position in range(width):
        active = running[position]
        moved = nextmove[rowbase[states[:active]] + padded[:active, position]]
        states[:active] = moved
        found = output[moved]
        hit = np.flatnonzero(found >= 0)
        texts.append(order[hit])
        features.append(found[hit])
    if not texts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(texts), np.concatenate(features)


def classify(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """py3langid's ``classify`` (normalised probabilities) for many texts in one pass: the byte
    automaton steps all texts at once, the naive Bayes scores are one sparse product. Same answers."""
    scores, classes = probabilities(texts)
    best = scores.argmax(axis=1)
    return [classes[index] for index in best], scores[np.arange(len(texts)), best]


def probabilities(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """py3langid's normalised probability of every language for every text, and the languages."""
    import unicodedata

    from scipy import sparse

    nextmove, rowbase, output, ptc, pc, classes, aliases = _model()
    encoded = [
        unicodedata.normalize("NFC", text.lower() if text.isupper() else text).encode("utf8", "surrogatepass")
        for text in texts
    ]
    lengths = np.array([len(item) for item in encoded], dtype=np.int64)
    owner, feature = _walk(encoded, nextmove, rowbase, output)
    counts = sparse.csr_matrix(
        (np.ones(owner.size, dtype=np.float32), (owner, feature)), shape=(len(texts), ptc.shape[0])
    )
    counts.sum_duplicates()
    counts.data = np.log1p(counts.data)
    scores = np.asarray(counts @ ptc, dtype=np.float64) + pc
    scores[np.diff(counts.indptr) == 0] = 0.0  # no features: uniform, as py3langid does
    scores /= np.sqrt(np.maximum(lengths, 1))[:, None]
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    for first, duplicate in aliases:
        scores[:, first] += scores[:, duplicate]
        scores[:, duplicate] = 0.0
    return scores, classes


@functools.lru_cache(maxsize=1)
def _reported_languages() -> tuple[np.ndarray, list[str | None]]:
    """A 0/1 matrix folding py3langid's classes into the languages reported (see :data:`FOLD`)."""
    classes = _model()[5]
    targets: list[str | None] = []
    for code in classes:
        target = FOLD.get(code, code if len(code) == 2 else None)
        targets.append(ALIASES.get(target, target) if target else None)
    names = sorted({target for target in targets if target})
    matrix = np.zeros((len(classes), len(names) + 1), dtype=np.float64)  # the last column: not a language
    for index, target in enumerate(targets):
        matrix[index, names.index(target) if target else len(names)] = 1.0
    return matrix, [*names, None]


def detect_languages(
    texts: Sequence[str | None], *, min_confidence: float = 0.5, batch_size: int = 20_000
) -> tuple[list[str | None], np.ndarray]:
    """ISO 639-1 code per text (``None`` = undetermined) and the model's probability (0 when undetermined).

    Identical prose is classified once.
    """
    import polars as pl

    frame = prose_frame(texts).with_row_index("index")
    judged = frame.filter(pl.col("determinable")).group_by("prose").agg("index")
    codes: list[str | None] = [None] * len(texts)
    confidence = np.zeros(len(texts), dtype=np.float64)
    for start in range(0, judged.height, batch_size):
        chunk = judged.slice(start, batch_size)
        scores, _ = probabilities(chunk.get_column("prose").to_list())
        fold, names = _reported_languages()
        folded = scores @ fold
        best = folded.argmax(axis=1)
        probability = folded[np.arange(len(best)), best]
        for choice, p, indices in zip(best.tolist(), probability.tolist(), chunk.get_column("index").to_list()):
            code = names[choice]
            if code is None or p < min_confidence:
                continue
            for index in indices:
                codes[index] = code
                confidence[index] = p
    return codes, confidence
