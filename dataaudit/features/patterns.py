"""Text patterns of low-quality training examples: refusals, boilerplate, placeholders,
encoding damage, secrets and personal data, and annotation debris.

Each detector is a plain function ``text -> str | None`` returning a short excerpt of the
evidence (or ``None``), so checks can quote it in a finding and tests can table-drive it.
Patterns favour precision: public example values (``example.com`` addresses, 555 phone
numbers, well-known test card numbers) are not personal data.
"""

from __future__ import annotations

import re

EXCERPT_CHARS = 60

REFUSAL = re.compile(
    r"\b(?:I['’]m|I am)\s+(?:very\s+|so\s+|really\s+)?sorry,?\s+(?:but\s+)?(?:I|as an AI)\b[^.!?\n]{0,40}?"
    r"\b(?:can(?:not|['’]t)|unable|not able|won['’]t|will not|must decline|don['’]t have)\b"
    r"|\bI\s+(?:cannot|can['’]t|am unable to|am not able to|won['’]t be able to)\s+"
    r"(?:help(?!\s+(?:but|it|myself|the way|feeling|thinking|wondering))|assist|comply|fulfil+|provide|create|generate|write|answer|do that|complete)\b"
    r"|\bI\s+(?:must|have to)\s+(?:respectfully\s+)?decline\b"
    r"|\b(?:that['’]s|that is|this is) not something I(?:['’]m able to| am able to| can) (?:help|assist)\b"
    r"|\bI['’]m not (?:able|allowed|permitted) to (?:help|assist|provide|comply)\b",
    re.IGNORECASE,
)
AI_BOILERPLATE = re.compile(
    r"\bas an? (?:AI|artificial intelligence)(?: language)? model\b"
    r"|\bas an? (?:AI|artificial intelligence)(?: assistant)?,? I (?:do not|don['’]t|cannot|can['’]t|am not|am unable|have no)\b"
    r"|\bI(?:['’]m| am) (?:just |only |merely )?an? AI(?: language)? model\b"
    r"|\bI(?:['’]m| am) (?:just |only |merely )?an? AI(?: assistant)?,? (?:and|so) I (?:do not|don['’]t|cannot|can['’]t)\b"
    r"|\bI (?:do not|don['’]t) have (?:personal )?(?:opinions|feelings|emotions|beliefs)\b(?= as an AI| since I am)"
    r"|\bmy (?:knowledge cutoff|training cut-?off)\b",
    re.IGNORECASE,
)

#: A whole response that is only a stand-in for content.
PLACEHOLDER = re.compile(
    r"\A\s*(?:"
    r"n/?a|<\s*no\s*(?:input|output|answer|response)\s*>|no\s+(?:input|output)|"
    r"todo|tbd|tba|fixme|xxx+|placeholder|"
    r"lorem ipsum\b.*|"
    r"\.{2,}|…+|-+|\?+|"
    r"\[(?:insert|your|add|answer|response|output|placeholder)[^\]]*\]|"
    r"<(?:insert|your|add|answer|response|output|placeholder)[^>]*>|"
    r"\{\{?\s*(?:answer|response|output|placeholder)\s*\}?\}|"
    r"(?:your\s+)?(?:answer|response|output)\s+(?:goes\s+)?here\.?"
    r")\s*\Z",
    re.IGNORECASE | re.DOTALL,
)
#: A fill-in slot left inside otherwise real text (letters signed "[Your Name]").
TEMPLATE_SLOT = re.compile(
    r"\[(?:your|insert|recipient|company|name|date|address)(?:['’]s)?(?:\s+[A-Za-z'’]+){0,4}\]|<insert[^>]{0,40}>|\blorem ipsum\b",
    re.IGNORECASE,
)

#: UTF-8 read as latin-1/cp1252, and the replacement character.
MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|â€[\u0080-\u00bf\u2018-\u201e\u2122\u0153\u02dc]|Â[\u00a0-\u00bf]|\ufffd")
#: C0/C1 control characters other than tab, newline and carriage return.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

SECRET = re.compile(
    r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b"
    r"|\bgithub_pat_[A-Za-z0-9_]{40,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}\b"
    r"|\bhf_[A-Za-z0-9]{30,}\b"
    r"|-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY-----"
)
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+-]*@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")
#: Reserved for documentation (RFC 2606 / 6761) and common made-up domains.
EXAMPLE_DOMAINS = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net)|[\w-]+\.(?:example|test|invalid|localhost)"
    r"|(?:test|domain|email|mail|company|yourdomain|mydomain|website|sample)\.com)$",
    re.IGNORECASE,
)
PHONE = re.compile(r"(?<![\w+-])(?:\+\d{1,3}[\s.-]?)?\(?\b(?P<area>\d{3})\)?[\s.-](?P<exchange>\d{3})[\s.-]\d{4}\b(?![\w-])")
PHONE_AFTER_KEYWORD = re.compile(
    r"\b(?:call|phone|tel|telephone|mobile|cell|fax|text|dial|whatsapp)\b[^\d\n]{0,15}?"
    r"(?P<number>(?:\+\d{1,3}[ .-]?)?(?:\(?\d{3}\)?[ .-]?)?\d{3}[.-]\d{4})\b",
    re.IGNORECASE,
)
SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
CARD_CANDIDATE = re.compile(r"(?<![\d-])(?:\d{13,19}|\d{4}(?:([ -])\d{4}){2}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})(?![\d-])")
#: Published test card numbers: shaped like cards, not anyone's data.
TEST_CARDS = frozenset({
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556", "5555555555554444",
    "5105105105105100", "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
    "30569309025904", "38520000023237", "3530111333300000", "3566002020360505", "4222222222222",
})

#: Cheap literal pre-filters: the full patterns only run on texts that contain these.
_REFUSAL_HINTS = ("sorry", "cannot", "can't", "can’t", "unable", "decline", "not able", "not allowed", "not permitted",
                  "won't", "won’t", "not something")
_BOILERPLATE_HINTS = ("ai", "artificial intelligence", "cutoff", "cut-off")
_SSN_HINT = re.compile(r"\d-\d\d-\d")
_PHONE_HINT = re.compile(r"\d{3}[\s.-]?\d{4}")
_SECRET_HINT = re.compile(r"sk-|AKIA|gh[pousr]_|github_pat_|xox|AIza|hf_|PRIVATE KEY")

PENN_TAGS = frozenset(
    "CC CD DT EX FW IN JJ JJR JJS LS MD NN NNS NNP NNPS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH "
    "VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB".split()
)
#: Tags that are not also everyday acronyms (CD, MD, IN, TO, DT are), so one alone is debris.
UNAMBIGUOUS_TAGS = frozenset("NN NNS NNP NNPS JJ JJR JJS VBD VBG VBN VBP VBZ WDT WRB RBR RBS PRP$ WP$".split())
TRAILING_TAG = re.compile(r",\s+(?:" + "|".join(re.escape(t) for t in sorted(PENN_TAGS)) + r")\s*[.?!]?\s*$")


def excerpt(text: str, start: int = 0, end: int | None = None, *, width: int = EXCERPT_CHARS) -> str:
    """A one-line excerpt of ``text[start:end]`` with a little context, for findings."""
    end = len(text) if end is None else end
    pad = max(0, (width - (end - start)) // 2)
    lo, hi = max(0, start - pad), min(len(text), end + pad)
    snippet = " ".join(text[lo:hi].split())
    if len(snippet) > width:
        snippet = snippet[: width - 1] + "…"
    return ("…" if lo > 0 else "") + snippet + ("…" if hi < len(text) else "")


def _match_excerpt(pattern: re.Pattern, text: str) -> str | None:
    match = pattern.search(text)
    return None if match is None else excerpt(text, match.start(), match.end())


def find_refusal(text: str) -> str | None:
    return _match_excerpt(REFUSAL, text) if _contains_any(text, _REFUSAL_HINTS) else None


def find_ai_boilerplate(text: str) -> str | None:
    return _match_excerpt(AI_BOILERPLATE, text) if _contains_any(text, _BOILERPLATE_HINTS) else None


def find_placeholder(text: str) -> str | None:
    """The whole text when it is only a placeholder ("N/A", "<noinput>", "TODO", "...")."""
    return excerpt(text) if text.strip() and PLACEHOLDER.match(text) else None


def find_template_slot(text: str) -> str | None:
    return _match_excerpt(TEMPLATE_SLOT, text) if ("[" in text or _contains_any(text, ("<insert", "lorem"))) else None


def find_mojibake(text: str) -> str | None:
    return _match_excerpt(MOJIBAKE, text)


def find_control_chars(text: str) -> str | None:
    match = CONTROL.search(text)
    return None if match is None else f"U+{ord(match.group(0)):04X} at position {match.start()}"


def find_secret(text: str) -> str | None:
    if not _SECRET_HINT.search(text):
        return None
    match = SECRET.search(text)
    return None if match is None else _redact(match.group(0))


def find_email(text: str, *, include_examples: bool = True) -> str | None:
    if "@" not in text:
        return None
    for match in EMAIL.finditer(text):
        if include_examples or not EXAMPLE_DOMAINS.search(match.group("domain")):
            return match.group(0)
    return None


def find_phone(text: str, *, include_examples: bool = True) -> str | None:
    """A formatted phone number (area code and separators), or any number right after "call"/"phone"."""
    if not _PHONE_HINT.search(text):
        return None
    for match in PHONE.finditer(text):
        fictional = match.group("exchange") == "555" or match.group("area") in {"000", "555", "123"}
        if include_examples or not fictional:
            return match.group(0).strip()
    match = PHONE_AFTER_KEYWORD.search(text)
    if match and (include_examples or "555" not in match.group("number")):
        return match.group("number")
    return None


def find_ssn(text: str, *, include_examples: bool = True) -> str | None:
    if not _SSN_HINT.search(text):
        return None
    for match in SSN.finditer(text):
        area = match.group(0)[:3]
        if include_examples or (area not in {"000", "666", "123"} and not area.startswith("9") and match.group(0) != "078-05-1120"):
            return match.group(0)
    return None


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    if not digits.isdigit() or not digits:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_card_number(text: str, *, include_examples: bool = True) -> str | None:
    """A 13–19 digit number (spaces or dashes allowed) with a card prefix that passes Luhn."""
    if not _PHONE_HINT.search(text):
        return None
    for match in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if len(set(digits)) < 4 or digits[0] not in "3456" or (digits in TEST_CARDS and not include_examples):
            continue
        if luhn_valid(digits):
            return _redact(match.group(0))
    return None


def find_pii(text: str, *, include_examples: bool = True) -> tuple[str, str] | None:
    """The first personal-data shape found, as (kind, value): email, phone number,
    SSN-shaped number or card number (cards redacted).

    ``include_examples=False`` skips reserved example values (``example.com``, 555 numbers,
    published test cards): inside code they are sample inputs, not anyone's data.
    """
    for kind, finder in (("email", find_email), ("phone number", find_phone), ("SSN-shaped number", find_ssn),
                         ("card number", find_card_number)):
        found = finder(text, include_examples=include_examples)
        if found is not None:
            return kind, found
    return None


def find_pos_tag_debris(text: str) -> str | None:
    """Penn Treebank tags left in text by an annotation tool ("occupy for 1 , CD NNS IN NNP .")."""
    tokens = text.split()
    for index, token in enumerate(tokens):
        if token in UNAMBIGUOUS_TAGS or (token in PENN_TAGS and index + 1 < len(tokens) and tokens[index + 1] in PENN_TAGS):
            run_end = index
            while run_end + 1 < len(tokens) and tokens[run_end + 1] in PENN_TAGS:
                run_end += 1
            return " ".join(tokens[max(0, index - 2): run_end + 2])
    match = TRAILING_TAG.search(text)
    return None if match is None else excerpt(text, match.start(), match.end(), width=30)


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(needle in lowered for needle in needles)


def _redact(secret: str) -> str:
    """Keep enough of a secret to recognise its shape, never the whole value."""
    visible = 4 if len(secret) > 12 else 2
    return secret[:visible] + "…" + secret[-2:] if len(secret) > 8 else secret[:2] + "…"
