"""Final-answer extraction: the short, comparable answer at the end of a response.

Two responses to the same question conflict when their *final answers* differ, however
the reasoning before them is worded. The conflict and duplicate checks compare these, and
the reference fine-tune scores its generations with the same function, so "correct" means
the same thing in the audit and in the evaluation.

An answer is normalised so that equal answers compare equal: numbers lose thousands
separators, currency signs, units of percent and trailing zeros (``"$1,200.00"`` →
``"1200"``); yes/no become ``"yes"``/``"no"``; option letters become ``"A"``–``"E"``; short
labels are case-folded with punctuation and spacing removed (``"Card-Arrival"`` →
``"card arrival"``).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = ["extract_final_answer", "normalize_answer", "normalize_number"]

#: Responses with at most this many words are answers in their own right ("72", "positive").
SHORT_ANSWER_MAX_WORDS = 4
SHORT_ANSWER_MAX_CHARS = 40

_NUMBER = r"[-−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?"
_NUMBER_RE = re.compile(_NUMBER)
_GSM8K_RE = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
# "The answer is 72", "Final answer: (B)", "Answer: yes", "the correct option is C".
_MARKED_RE = re.compile(
    r"(?:final\s+answer|the\s+(?:correct\s+|right\s+|final\s+)?(?:answer|option|choice)|^\s*answer)"
    r"\s*(?:is|would\s+be|will\s+be|should\s+be|:|=)\s*:?\s*(.+)",
    re.IGNORECASE | re.MULTILINE,
)
_OPTION_RE = re.compile(r"^\(?([A-Ea-e])\)?(?:[.):]|\W|$)")
_YES_NO_RE = re.compile(r"^(yes|no)\b", re.IGNORECASE)
_LEADING_FILLER_RE = re.compile(r"^(?:\s|\*|_|`|\"|'|“|”)+")
_LATEX_FRACTION_RE = re.compile(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_TEXT_RE = re.compile(r"\\(?:text|mathrm|mbox)\s*\{([^{}]*)\}")


def normalize_number(text: str) -> str | None:
    """A number as a canonical string, or None when ``text`` is not one number.

    ``"$1,200.00"`` → ``"1200"``, ``"-0.50"`` → ``"-0.5"``, ``"75%"`` → ``"75"``,
    ``"3 / 4"`` → ``"3/4"``.
    """
    cleaned = text.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "").rstrip("%")
    if "/" in cleaned:
        numerator, _, denominator = cleaned.partition("/")
        numerator_value, denominator_value = normalize_number(numerator), normalize_number(denominator)
        if numerator_value is None or denominator_value is None:
            return None
        return f"{numerator_value}/{denominator_value}"
    if not re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)", cleaned):
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - guarded by the regex
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_answer(text: str) -> str | None:
    """The canonical form of an answer that is already isolated, or None if it is empty.

    A leading number wins (``"72 clips"`` → ``"72"``), then an option letter, then yes/no;
    anything else is a short label, case-folded with punctuation collapsed to spaces.
    """
    text = unicodedata.normalize("NFKC", text).strip()
    text = _LATEX_TEXT_RE.sub(r"\1", _LATEX_FRACTION_RE.sub(r"\1/\2", text))
    text = _LEADING_FILLER_RE.sub("", text).strip().rstrip(".!").strip()
    if not text:
        return None
    number = _NUMBER_RE.match(text)
    if number:
        rest = text[number.end():].strip()
        # "72 clips" is the number; "3 bedrooms and 2 baths" is not one answer.
        if not _NUMBER_RE.search(rest):
            value = normalize_number(number.group(0))
            if value is not None:
                return value
    option = _OPTION_RE.match(text)
    if option and (len(text) <= 3 or text[0] == "(" or text[1:2] in (".", ")", ":")):
        return option.group(1).upper()
    yes_no = _YES_NO_RE.match(text)
    if yes_no:
        return yes_no.group(1).lower()
    label = re.sub(r"[\W_]+", " ", text.casefold()).strip()
    if label != text:
        # Without its punctuation the answer may turn out to be a number or letter: "(72) x" → "72".
        return normalize_answer(label)
    return label or None


def extract_final_answer(text: str | None, *, last_number_fallback: bool = False) -> str | None:
    """The normalised final answer of a response, or None when it has no clear one.

    Looked for, in order: a GSM8K ``#### 72`` line, a LaTeX ``\\boxed{72}``, an explicit
    marker (``The answer is 72``, ``Final answer: (B)``), then the whole response when it is
    short (a number, yes/no, an option letter, a label). Long prose with no marker has no
    answer — guessing one would make conflicts up — unless ``last_number_fallback`` asks for
    the last number in the text, as math evaluations do for free generations.
    """
    if not text or not text.strip():
        return None
    text = unicodedata.normalize("NFKC", text)
    gsm8k = _GSM8K_RE.findall(text)
    if gsm8k:
        return normalize_answer(gsm8k[-1])
    boxed = _BOXED_RE.findall(text)
    if boxed:
        return normalize_answer(boxed[-1])
    marked = _MARKED_RE.findall(text)
    if marked:
        answer = _first_clause(marked[-1])
        if answer:
            return normalize_answer(answer)
    stripped = text.strip()
    if len(stripped) <= SHORT_ANSWER_MAX_CHARS and len(stripped.split()) <= SHORT_ANSWER_MAX_WORDS:
        return normalize_answer(stripped)
    yes_no = _YES_NO_RE.match(_LEADING_FILLER_RE.sub("", stripped))
    if yes_no and re.match(r"^(?:yes|no)\s*[,.!:;]", _LEADING_FILLER_RE.sub("", stripped), re.IGNORECASE):
        return yes_no.group(1).lower()
    if last_number_fallback:
        numbers = _NUMBER_RE.findall(text)
        if numbers:
            return normalize_number(numbers[-1])
    return None


def _first_clause(text: str) -> str:
    """The answer part of ``"72 clips, because ..."``: up to the first sentence break."""
    text = text.strip()
    # Full stops and commas end the clause unless they sit inside a number ("0.5", "1,200").
    match = re.search(r"[.,](?!\d)|(?<!\d)[.,]|[;\n]|\s(?:because|since|as|so)\s", text)
    clause = text[: match.start()] if match else text
    return clause.strip()
