"""Language identification for the language check, offline, with an explicit "undetermined".

py3langid (a maintained fork of langid.py; 97 languages, its model ships in the wheel) was
chosen over lingua after measuring both on the sentences in ``tests/checks/multilingual.py``
(12 languages, long and short): py3langid 100% long / 100% short at ~0.1 ms a text; lingua
100% / 96% in its low-accuracy mode (~0.5 ms a text) and 100% / 100% in high-accuracy mode at
~3.6 ms a text and ~20 s to load (``bench/bench_chat_faults.py --compare-language-id``).

A text too short to judge (a few words), code, numbers or a label is ``None`` (undetermined),
never a guess: only the letters outside code blocks, URLs and identifiers count, and the
model's normalised probability must be high.
"""

from __future__ import annotations

import functools
import re
from typing import Sequence

import numpy as np

#: Minimum words of letters (2+ letters each) outside code for a text in a spaced script.
MIN_WORDS = 4
#: Minimum letters overall, and minimum CJK / kana / hangul characters for unspaced scripts.
MIN_LETTERS = 20
MIN_CJK = 6
#: Minimum share of letters among the non-space characters left after removing code.
MIN_LETTER_SHARE = 0.6
#: Characters of cleaned text handed to the classifier: language shows in the first sentences.
MAX_CHARS = 400
#: Languages py3langid confuses with a close neighbour are reported as one.
ALIASES = {"nb": "no", "nn": "no", "da": "no", "ms": "id", "bs": "hr", "sr": "hr", "sk": "cs", "gl": "es", "an": "es",
           "oc": "fr", "lb": "de", "mt": "it", "wa": "fr"}
#: English names, to let a prompt that asks for a language ("answer in French") through.
NAMES = {
    "en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian", "pt": "portuguese",
    "nl": "dutch", "ru": "russian", "pl": "polish", "tr": "turkish", "zh": "chinese", "ja": "japanese",
    "ko": "korean", "ar": "arabic", "hi": "hindi", "sv": "swedish", "no": "norwegian", "fi": "finnish",
    "cs": "czech", "hr": "croatian", "uk": "ukrainian", "el": "greek", "he": "hebrew", "vi": "vietnamese",
    "id": "indonesian", "th": "thai", "fa": "persian", "ro": "romanian", "hu": "hungarian", "bg": "bulgarian",
}

_CODE_BLOCK = re.compile(r"```.*?(```|$)|`[^`\n]*`", re.S)
_URL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\w+")
_IDENTIFIER = re.compile(r"\b\w*(_|[a-z][A-Z])\w*\b")  # snake_case, camelCase
_WORD = re.compile(r"[^\W\d_]{2,}")
_LETTER = re.compile(r"[^\W\d_]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CODE_LINE = re.compile(r"^\s*(def |class |import |from \S+ import|return\b|for .* in |if .*:|#include|SELECT |"
                        r"function\b|var |let |const |public |private |\}|\{|</?\w+>)", re.M | re.I)


def clean_text(text: str | None) -> str:
    """The prose of ``text``: code blocks, URLs, identifiers and code-looking lines removed."""
    if not text:
        return ""
    text = _CODE_BLOCK.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _CODE_LINE.sub(" ", text) if _CODE_LINE.search(text) else text
    return _IDENTIFIER.sub(" ", text)


def is_determinable(prose: str) -> bool:
    """Enough prose to tell a language: a few words are not, nor are numbers, symbols or code."""
    cjk = len(_CJK.findall(prose))
    if cjk >= MIN_CJK:
        return True
    letters = len(_LETTER.findall(prose))
    visible = sum(1 for char in prose if not char.isspace())
    if letters < MIN_LETTERS or visible == 0 or letters / visible < MIN_LETTER_SHARE:
        return False
    return len(_WORD.findall(prose)) >= MIN_WORDS


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_languages(texts: Sequence[str | None], *, min_confidence: float = 0.5) -> tuple[list[str | None], np.ndarray]:
    """ISO 639-1 code per text (``None`` = undetermined) and the model's probability (0 when undetermined).

    Identical texts are classified once.
    """
    identifier = _identifier()
    cache: dict[str, tuple[str | None, float]] = {}
    codes: list[str | None] = []
    confidence = np.zeros(len(texts), dtype=np.float64)
    for index, text in enumerate(texts):
        key = text or ""
        if key not in cache:
            prose = clean_text(key)
            if not is_determinable(prose):
                cache[key] = (None, 0.0)
            else:
                code, probability = identifier.classify(" ".join(prose.split())[:MAX_CHARS])
                code = ALIASES.get(code, code)
                cache[key] = (code, float(probability)) if probability >= min_confidence else (None, 0.0)
        codes.append(cache[key][0])
        confidence[index] = cache[key][1]
    return codes, confidence
