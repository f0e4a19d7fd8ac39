"""Small, meaning-preserving input perturbations that probe how brittle a fine-tuned model is.

A model that memorised its training prompts loses accuracy (or gains loss) on held-out prompts
after changes a human would not notice; a model that learned the task does not. Every kind makes
one kind of change only, so a drop can be attributed to it:

``typo``         swap, drop or duplicate one letter inside about one word in six
``casing``       lower-case everything, capitalise first letters, or random-case a few words
``punctuation``  drop or add the final ``.``/``?``/``!``, remove commas, or double one space
``word_order``   swap two adjacent words in one place

Numbers and code carry meaning, so no kind ever changes a digit, and words inside backticks or
that look like code (``snake_case``, ``camelCase``, ``a.b``, ``f(x)``, URLs) are left alone.
Each text gets its own random generator seeded from a stable hash of ``(seed, kind, text)``:
the result does not depend on the other texts in the batch, on the process, or on
``PYTHONHASHSEED``.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

PERTURBATIONS: tuple[str, ...] = ("typo", "casing", "punctuation", "word_order")

#: About one word in six: enough to matter, few enough that a reader shrugs.
DEFAULT_RATE = 1 / 6

_TOKEN = re.compile(r"\S+")
# Backtick spans, including an unterminated fence that runs to the end of the text.
_BACKTICKS = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_CODE_LOOKING = re.compile(r"[_=<>{}\[\]/\\|#$%^&*@~`+]|\w\.\w|\w\(|::|->|[a-z][A-Z]")
# Surrounding punctuation that is not part of the word itself: quotes, brackets, commas, stops.
_AFFIXES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
_LETTERS_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?;:]")
_TRAILING_STOP = re.compile(r"\s*[.!?]+(?=\s*\Z)")  # with a detached " ?" (TREC style)
_COMMAS = re.compile(r",+")
_QUESTION_OPENERS = frozenset(
    "what who whom whose which when where why how is are was were do does did can could will "
    "would should shall may might must has have had".split()
)


@dataclass(frozen=True)
class _Word:
    """One whitespace-delimited token; ``core`` is the token without surrounding punctuation."""

    start: int
    end: int
    core_start: int
    core_end: int
    core: str
    protected: bool


def perturb(texts: Sequence[str], *, kind: str, seed: int = 0, rate: float = DEFAULT_RATE) -> list[str]:
    """Return one perturbed copy of each text.

    ``rate`` is the share of words edited by ``typo`` and by the random-case variant of
    ``casing`` (at least one word whenever one qualifies); ``punctuation`` and ``word_order``
    make a single edit per text because more would stop being unnoticeable. A text differs from
    its original whenever the kind can change it at all; empty texts stay empty.
    """
    perturber = _PERTURBERS.get(kind)
    if perturber is None:
        raise ValueError(f"unknown perturbation kind {kind!r}; valid kinds: {', '.join(PERTURBATIONS)}")
    if not 0 < rate <= 1:
        raise ValueError(f"perturbation rate must be in (0, 1], got {rate}")
    return [perturber(text, _rng(text, kind=kind, seed=seed), rate) for text in texts]


def perturb_all(texts: Sequence[str], *, seed: int = 0) -> dict[str, list[str]]:
    """Every kind in :data:`PERTURBATIONS` at the default rate, keyed by kind."""
    return {kind: perturb(texts, kind=kind, seed=seed) for kind in PERTURBATIONS}


def _rng(text: str, *, kind: str, seed: int) -> random.Random:
    # BLAKE2b, not hash(): the built-in is salted per process, and results must be reproducible.
    digest = hashlib.blake2b(
        f"{seed}\x1f{kind}\x1f{text}".encode("utf-8", errors="surrogatepass"), digest_size=8
    ).digest()
    return random.Random(int.from_bytes(digest, "little"))


def _words(text: str) -> list[_Word]:
    code_spans = [match.span() for match in _BACKTICKS.finditer(text)]
    words = []
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        token = match.group()
        affixes = _AFFIXES.match(token)
        core_start = start + len(affixes.group(1))
        core_end = core_start + len(affixes.group(2))
        in_code = any(start < code_end and code_start < end for code_start, code_end in code_spans)
        words.append(
            _Word(
                start=start, end=end, core_start=core_start, core_end=core_end, core=affixes.group(2),
                protected=in_code or bool(_CODE_LOOKING.search(token)),
            )
        )
    return words


def _replace(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits."""
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _edit_count(candidates: int, words: int, rate: float) -> int:
    return min(candidates, max(1, round(words * rate)))


def _is_letters(core: str, *, minimum: int) -> bool:
    # isalpha(), not \w: digits, underscores and numeric characters such as "²" are not letters.
    return len(core) >= minimum and core.isalpha()


def _typo(text: str, rng: random.Random, rate: float) -> str:
    """Keyboard-slip edits inside plain alphabetic words, never the first letter of long words."""
    all_words = _words(text)
    words = [word for word in all_words if not word.protected]
    candidates = [word for word in words if _is_letters(word.core, minimum=4)]
    if not candidates:
        # Short texts ("Is it ok?") still deserve a typo when any word can take one.
        candidates = [word for word in words if _is_letters(word.core, minimum=2)]
    chosen = rng.sample(candidates, _edit_count(len(candidates), len(all_words), rate))
    return _replace(text, [(word.core_start, word.core_end, _misspell(word.core, rng)) for word in chosen])


def _misspell(word: str, rng: random.Random) -> str:
    first = 1 if len(word) >= 3 else 0
    last = len(word) - 2 if len(word) >= 4 else len(word) - 1  # keep the last letter of long words
    swaps = [i for i in range(first, last) if word[i] != word[i + 1]]
    operations = ["duplicate"] + (["swap"] if swaps else []) + (["drop"] if len(word) >= 3 else [])
    operation = rng.choice(operations)
    if operation == "swap":
        i = rng.choice(swaps)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    i = rng.randint(first, max(first, last))
    if operation == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _casing(text: str, rng: random.Random, rate: float) -> str:
    """One casing style per text, tried in a seeded order until one changes something."""
    words = [word for word in _words(text) if not word.protected]
    styles: list[Callable[[], str]] = [
        lambda: _replace(text, [(w.start, w.end, text[w.start : w.end].lower()) for w in words]),
        lambda: _replace(text, [(w.core_start, w.core_start + 1, w.core[:1].upper()) for w in words if w.core]),
        lambda: _random_case(text, words, rng, rate),
    ]
    rng.shuffle(styles)
    for style in styles:
        changed = style()
        if changed != text:
            return changed
    return text


def _random_case(text: str, words: list[_Word], rng: random.Random, rate: float) -> str:
    cased = [word for word in words if word.core != word.core.swapcase()]
    chosen = rng.sample(cased, _edit_count(len(cased), len(words), rate))
    edits = []
    for word in chosen:
        mixed = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in word.core)
        edits.append((word.core_start, word.core_end, mixed if mixed != word.core else word.core.swapcase()))
    return _replace(text, edits)


def _punctuation(text: str, rng: random.Random, rate: float) -> str:
    """One punctuation edit that leaves the meaning (and every number) as it was."""
    code_spans = [match.span() for match in _BACKTICKS.finditer(text)]

    def in_code(position: int) -> bool:
        return any(start <= position < end for start, end in code_spans)

    options: list[Callable[[], str]] = []
    body_end = len(text.rstrip())
    if body_end and not in_code(body_end - 1):
        stop = _TRAILING_STOP.search(text)
        if stop:
            options.append(lambda: text[: stop.start()] + text[stop.end() :])
        else:
            options.append(lambda: text[:body_end] + _final_mark(text) + text[body_end:])
    commas = [
        match.span()
        for match in _COMMAS.finditer(text)
        if not in_code(match.start())
        # "1,000" must not become "1000": digit runs carry meaning.
        and not (match.start() > 0 and text[match.start() - 1].isdigit()
                 and match.end() < len(text) and text[match.end()].isdigit())
    ]
    if commas:
        options.append(lambda: _replace(text, [(start, end, "") for start, end in commas]))
    spaces = [
        i for i in range(1, len(text) - 1)
        if text[i] == " " and not text[i - 1].isspace() and not text[i + 1].isspace() and not in_code(i)
    ]
    if spaces:
        options.append(lambda: _replace(text, [(i, i + 1, "  ") for i in [rng.choice(spaces)]]))
    return rng.choice(options)() if options else text


def _final_mark(text: str) -> str:
    first = text.split(maxsplit=1)[0].strip("\"'([").lower() if text.strip() else ""
    return "?" if first in _QUESTION_OPENERS else "."


def _word_order(text: str, rng: random.Random, rate: float) -> str:
    """Swap the letters of two neighbouring words, leaving their punctuation where it was."""
    words = _words(text)
    pairs = [
        i for i in range(len(words) - 1)
        if _swappable(words[i]) and _swappable(words[i + 1])
        and words[i].core != words[i + 1].core
        and "\n" not in text[words[i].end : words[i + 1].start]
        and not _SENTENCE_END.search(text[words[i].core_end : words[i].end])
    ]
    # Moving the first word changes how the text opens (often a question word); avoid it.
    pairs = [i for i in pairs if i > 0] or pairs
    if not pairs:
        return text
    i = rng.choice(pairs)
    left, right = words[i], words[i + 1]
    return _replace(text, [(left.core_start, left.core_end, right.core), (right.core_start, right.core_end, left.core)])


def _swappable(word: _Word) -> bool:
    return not word.protected and bool(_LETTERS_WORD.fullmatch(word.core)) and not any(ch.isdigit() for ch in word.core)


_PERTURBERS: dict[str, Callable[[str, random.Random, float], str]] = {
    "typo": _typo,
    "casing": _casing,
    "punctuation": _punctuation,
    "word_order": _word_order,
}
