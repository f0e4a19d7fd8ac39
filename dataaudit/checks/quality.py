"""Quality check: examples that are broken on their own, whatever their neighbours say.

Each kind of problem (:data:`KINDS`) has one severity, one score and one suggestion, so
the rules live in one table:

- **error**: nothing to learn from or actively harmful — empty response, a placeholder
  instead of a response ("N/A", "<noinput>", "TODO"), a response cut off inside code or
  JSON (unclosed fence, unbalanced brackets);
- **warning**: teaches the wrong thing or leaks data — prose cut mid-word or mid-sentence,
  refusals, "As an AI language model" boilerplate, a response that repeats the prompt,
  mojibake, credentials and personal data, an empty prompt, part-of-speech tag debris;
- **info**: cosmetic — control characters, template slots left in real text ("[Your Name]").

Truncation is judged conservatively, because code and many short answers legitimately end
without punctuation. Code and structured answers need an unclosed fence, brackets opened
and never closed, a string left open on the last line, or a last name that starts an
earlier one but never occurs itself ("seque" after ``sequence``). Prose needs a last word
that occurs nowhere else in the dataset but starts a word that does ("minut" where
"minutes" is common), a last word that cannot end a sentence ("the", "and"), or a last
sentence that stops on a lowercase word after earlier sentences that ended properly.

Email addresses and phone numbers with reserved example values (``example.com``, 555
numbers) count as personal data in a prose response, but not in code or prompts, where
they are the task's sample inputs.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass
from functools import partial

import polars as pl

from dataaudit.checks.base import (
    SEVERITY_RANK,
    Check,
    CheckResult,
    Finding,
    Kind,
    register_check,
    result_from_findings,
)
from dataaudit.context import AuditContext
from dataaudit.features import patterns
from dataaudit.features.response_format import (
    FENCE,
    ResponseFormat,
    answer_text_expr,
    formats_of,
    is_code_line,
    response_formats,
)
from dataaudit.params import Interval

KINDS: dict[str, Kind] = {
    "empty_response": Kind("error", 0.0, "Write the missing response or drop the example."),
    "placeholder": Kind("error", 0.02, "Replace the placeholder with a real response or drop the example."),
    "truncated_response": Kind("warning", 0.15, "Regenerate or complete the cut-off response, or drop the example."),
    "refusal": Kind("warning", 0.1, "Replace the refusal with a real answer, or drop the example unless teaching refusals is intended."),
    "ai_boilerplate": Kind("warning", 0.3, "Remove the 'As an AI…' boilerplate and keep the substance."),
    "echo": Kind("warning", 0.1, "The response repeats the prompt; write the actual answer."),
    "secret": Kind("warning", 0.05, "Remove the credential (rotate it if it was real) and use a placeholder such as YOUR_API_KEY."),
    "pii": Kind("warning", 0.25, "Remove or mask the personal data (e.g. [EMAIL], [PHONE]) unless it is synthetic."),
    "mojibake": Kind("warning", 0.3, "Re-decode the text as UTF-8 (it was read with the wrong encoding), e.g. with ftfy."),
    "empty_prompt": Kind("warning", 0.1, "Write the missing prompt or drop the example."),
    "pos_tag_debris": Kind("warning", 0.3, "Strip the part-of-speech tags (annotation residue) from the text."),
    "control_chars": Kind("info", 0.6, "Strip the control characters."),
    "template_slot": Kind("info", 0.6, "Fill in or remove the template slot."),
}
#: A truncation inside code or structured output is an error: the example teaches broken syntax.
TRUNCATED_STRUCTURE = Kind("error", 0.05, KINDS["truncated_response"].suggestion)

_STRING_LITERAL = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|`[^`\n]*`')
#: Line comments: ``#`` before a space; ``//`` at a line start, or after a space and before
#: a word (``x // 2`` and ``len(a)//2`` are Python floor division, not comments).
_LINE_COMMENT = re.compile(r"(?:(?:^|[ \t])#(?=[ \t]|$)|^[ \t]*//|[ \t]//(?=[ \t]*(?:[^\d\s(]|$)))[^\n]*", re.MULTILINE)
#: A response ending in one of these finished a statement, string or tag: not cut mid-token.
_STATEMENT_END = ";)]}>\"'`"
_TRAILING_WORD = re.compile(r"([A-Za-z][A-Za-z_]*)$")
_TOKEN = re.compile(r"[a-z][a-z_]*")
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_TERMINAL = re.compile(r"[.!?:;…)\]\"'”’*`>]$")
_OPEN, _CLOSE = "([{", ")]}"
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_TRAILING_IDENTIFIER = re.compile(r"(?<!\w)([A-Za-z_]\w*)$")
#: Words that legitimately end a script or block (shell, Ruby, Lua, VB, Python).
_BLOCK_ENDS = frozenset("fi done esac end endif endwhile endfor wend loop next pass break continue return else then".split())
_ONE_LETTER_WORDS = frozenset("aixyzn")
#: Articles, prepositions and conjunctions: prose that stops on one was cut off.
_NEVER_LAST_WORDS = frozenset(
    "a an the and or but nor of to with for from into onto at by in on as than that which whose because "
    "if although though while whereas so such my your our their its his her".split()
)


@dataclass(frozen=True)
class _Issue:
    kind: str
    evidence: str
    where: str = "response"
    structural: bool = False


@dataclass(frozen=True)
class _Vocabulary:
    """Word counts over the whole dataset.

    A last word seen nowhere else that starts a common word is a word cut in half.
    """

    counts: Counter[str]
    common: list[str]  # sorted words seen at least twice

    @classmethod
    def from_texts(cls, texts: "list[str] | pl.Series") -> "_Vocabulary":
        """Count the words of ``texts`` (nulls count as empty).

        In polars: a Python ``Counter`` over ``re.findall`` took 0.5 s per 50,000 rows, in the
        main process while the workers waited.
        """
        words = (pl.Series(texts, dtype=pl.String).str.to_lowercase().str.extract_all(_TOKEN.pattern)
                 .explode().drop_nulls().value_counts(name="count"))
        counts: Counter[str] = Counter(dict(zip(words.get_column(words.columns[0]).to_list(), words.get_column("count").to_list())))
        return cls(counts=counts, common=sorted(word for word, count in counts.items() if count >= 2))

    def completion(self, fragment: str) -> str | None:
        """A common word that ``fragment`` is a proper prefix of, if ``fragment`` is not a word itself.

        Single letters count as fragments whatever their frequency (they are variable names
        and initials elsewhere), except the words "a" and "I" and the usual unknowns.
        """
        fragment = fragment.lower()
        if fragment in _ONE_LETTER_WORDS or (len(fragment) > 1 and self.counts.get(fragment, 0) > 1):
            return None
        position = bisect.bisect_right(self.common, fragment)
        if position < len(self.common) and self.common[position].startswith(fragment):
            return self.common[position]
        return None


@register_check
class QualityCheck(Check):
    """Flags empty, placeholder, truncated, refusing, leaking or garbled examples.

    ``min_truncation_words``: responses shorter than this are never called truncated
    (short answers legitimately stop without punctuation); ``check_prompts``: also look for
    problems on the prompt side (empty, POS-tag debris, encoding, secrets and PII).
    """

    name = "quality"
    description = "Rows that look broken: empty, truncated, placeholder or garbled text."
    kinds = {**KINDS, "truncated_structure": TRUNCATED_STRUCTURE}
    _parameter_constraints = {
        "min_truncation_words": [Interval(int, 1, None)],
        "check_prompts": [bool],
    }
    needs = frozenset()

    def __init__(self, *, min_truncation_words: int = 3, check_prompts: bool = True):
        self.min_truncation_words = min_truncation_words
        self.check_prompts = check_prompts

    def run(self, ctx: AuditContext) -> CheckResult:
        """Judge each row on its own once the dataset's vocabulary is known (for words cut in half)."""
        frame = ctx.dataset.frame
        n = frame.height
        has_responses = ctx.dataset.has_responses
        vocabulary = _Vocabulary.from_texts(pl.concat([frame.get_column("prompt"), frame.get_column("response")])) if has_responses else None

        row_ids = frame.get_column("row").to_list()
        # Rows are judged independently once the vocabulary is known: the engine may spread them.
        issues = ctx.map_frame(partial(_issues_frame, check=self, vocabulary=vocabulary),
                               frame.select("prompt", "response", "label", answer_text_expr())
                               .with_columns(response_formats(ctx).alias("format"))).get_column("issues")
        findings: list[Finding] = []
        kinds_per_row: list[list[str]] = [[] for _ in range(n)]
        by_kind: Counter[str] = Counter()
        # Only the rows with issues (the column is null elsewhere) come back to Python.
        flagged = issues.is_not_null().arg_true()
        for index, found in zip(flagged.to_list(), issues.gather(flagged).to_list()):
            kinds = []
            for issue in (_Issue(**fields) for fields in found):
                if issue.kind in kinds:
                    continue
                kinds.append(issue.kind)
                by_kind[issue.kind] += 1
                findings.append(_finding(row_ids[index], issue))
            kinds_per_row[index] = sorted(kinds, key=lambda k: (SEVERITY_RANK[KINDS[k].severity], k))
        summary = {"by_kind": dict(sorted(by_kind.items()))}
        if not has_responses:
            summary["skipped"] = "no responses: only prompt-side checks ran"
        return result_from_findings(self.name, ctx, findings, summary=summary,
                                    kinds=pl.Series(kinds_per_row, dtype=pl.List(pl.String)))

    def _prompt_issues(self, prompt: str) -> list[_Issue]:
        if not prompt.strip():
            return [_Issue("empty_prompt", repr(prompt[:20]), where="prompt")]
        issues = []
        debris = patterns.find_pos_tag_debris(prompt)
        if debris:
            issues.append(_Issue("pos_tag_debris", debris, where="prompt"))
        issues += _shared_issues(prompt, where="prompt", examples_are_data=False)
        return issues

    def _response_issues(self, response: str, prompt: str, vocabulary: _Vocabulary | None, fmt: ResponseFormat | None, *,
                         is_label: bool = False) -> list[_Issue]:
        """Problems of one response.

        ``fmt`` is its format (:func:`response_formats`), ``is_label`` marks classification labels
        (a label may equal its text).
        """
        if not response.strip():
            return [_Issue("empty_response", repr(response)[:20])]
        placeholder = patterns.find_placeholder(response)
        if placeholder:
            return [_Issue("placeholder", placeholder)]
        issues: list[_Issue] = []
        if not is_label and _normalised(response) == _normalised(prompt):
            issues.append(_Issue("echo", patterns.excerpt(response)))
        prose = "" if fmt.code == "bare" else (_outside_code(response) if fmt.code == "fenced" else response)
        refusal = patterns.find_refusal(prose)
        if refusal:
            issues.append(_Issue("refusal", refusal))
        boilerplate = patterns.find_ai_boilerplate(prose)
        if boilerplate and not refusal:
            issues.append(_Issue("ai_boilerplate", boilerplate))
        truncation = None if is_label else self._truncation(response, fmt, vocabulary)
        if truncation:
            issues.append(truncation)
        slot = patterns.find_template_slot(prose)
        if slot:
            issues.append(_Issue("template_slot", slot))
        issues += _shared_issues(response, where="response", examples_are_data=fmt.code is None)
        return issues

    def _truncation(self, response: str, fmt: ResponseFormat, vocabulary: _Vocabulary | None) -> _Issue | None:
        text = response.rstrip()
        tail = patterns.excerpt(text, max(0, len(text) - 40), len(text), width=50)
        if fmt.code == "fenced" and not fmt.fences_balanced:
            return _Issue("truncated_response", f"a ``` fence is never closed; ends with {tail!r}", structural=True)
        structured = fmt.code is not None or (text[:1] in "{[" and fmt.json is None)
        if structured:
            unclosed = _unclosed_brackets(_code_text(text) if fmt.code == "fenced" else text)
            if unclosed and text[-1] not in _STATEMENT_END:
                return _Issue("truncated_response", f"{unclosed} never closed; ends with {tail!r}", structural=True)
        if fmt.code == "bare" and text[-1].isalnum():
            cut = _unterminated_string(text) or _cut_identifier(text)
            if cut:
                return _Issue("truncated_response", f"{cut}; ends with {tail!r}", structural=True)
        if fmt.words < self.min_truncation_words or fmt.final_marker is not None or fmt.json is not None:
            return None
        offset = max(0, len(text) - 80)
        match = _TRAILING_WORD.search(text, offset)
        if match and vocabulary is not None and fmt.code != "bare" and _continues_sentence(text, match.start()):
            completion = vocabulary.completion(match.group(1))
            if completion is not None:
                return _Issue("truncated_response", f"ends mid-word: {tail!r} ('{match.group(1)}' looks like a cut '{completion}')",
                              structural=structured)
        if structured or fmt.table or fmt.list_style or fmt.headings:
            return None
        if match and match.group(1).lower() in _NEVER_LAST_WORDS and (match.group(1).islower() or _starts_sentence(text, match.start())):
            return _Issue("truncated_response", f"ends on '{match.group(1)}', a word that cannot end a sentence: {tail!r}")
        if _cut_mid_sentence(text):
            return _Issue("truncated_response", f"ends mid-sentence without punctuation: {tail!r}")
        return None


_ISSUES_TYPE = pl.List(pl.Struct({"kind": pl.String, "evidence": pl.String, "where": pl.String, "structural": pl.Boolean}))


def _issues_frame(frame: pl.DataFrame, *, check: QualityCheck, vocabulary: _Vocabulary | None) -> pl.DataFrame:
    """Each row's issues (prompt side, then response side), as data an engine can ship back.

    ``format`` is each row's judged response described (:func:`response_formats`). ``issues`` is
    null where a row has none. They are gathered as flat columns and grouped by row in polars: a
    list of per-row lists of dicts took polars longer to read than finding the issues.
    """
    owners, values = [], []
    # ``answer_text`` (see :func:`answer_text_expr`) is absent from frames without conversations.
    answers = frame.get_column("answer_text") if "answer_text" in frame.columns else pl.repeat(None, frame.height, eager=True)
    formats = formats_of(frame.get_column("format"))
    rows = zip(frame.select("prompt", "response", "label").iter_rows(), answers, formats)
    for index, ((prompt, response, label), answer, fmt) in enumerate(rows):
        issues = check._prompt_issues(prompt or "") if check.check_prompts else []
        if answer is not None:  # a turn that calls tools: its text is judged as text, its calls for leaks only
            if answer.strip():
                issues += check._response_issues(answer, prompt or "", vocabulary, fmt)
            issues += _shared_issues((response or "")[len(answer):], where="response", examples_are_data=True)
        elif response is not None:
            issues += check._response_issues(response, prompt or "", vocabulary, fmt, is_label=label is not None)
        owners += [index] * len(issues)
        values += [(issue.kind, issue.evidence, issue.where, issue.structural) for issue in issues]
    fields = _ISSUES_TYPE.inner.to_schema()
    flat = pl.DataFrame(values, schema=fields, orient="row").with_columns(index=pl.Series(owners, dtype=pl.Int64))
    grouped = flat.group_by("index").agg(pl.struct(*fields).alias("issues"))
    every = pl.DataFrame({"index": pl.int_range(frame.height, dtype=pl.Int64, eager=True)})
    return every.join(grouped, on="index", how="left").sort("index").select(pl.col("issues").cast(_ISSUES_TYPE))


def _shared_issues(text: str, *, where: str, examples_are_data: bool) -> list[_Issue]:
    """Problems that matter on either side of an example.

    Reserved example values (``user@example.com``, 555 numbers) are personal data only in a
    prose response; in prompts and code they are the task's sample inputs.
    """
    issues = []
    for kind, finder in (("mojibake", patterns.find_mojibake), ("control_chars", patterns.find_control_chars),
                         ("secret", patterns.find_secret)):
        found = finder(text)
        if found:
            issues.append(_Issue(kind, found, where=where))
    pii = patterns.find_pii(text, include_examples=examples_are_data)
    if pii:
        issues.append(_Issue("pii", " ".join(pii), where=where))
    return issues


def _finding(row: int, issue: _Issue) -> Finding:
    kind = TRUNCATED_STRUCTURE if issue.structural else KINDS[issue.kind]
    code = "truncated_structure" if issue.structural else issue.kind
    return Finding(row=row, score=kind.score, severity=kind.severity, kind=code, reason=_reason(issue), suggestion=kind.suggestion)


def _reason(issue: _Issue) -> str:
    side = issue.where
    match issue.kind:
        case "empty_response":
            return f"empty response ({issue.evidence})"
        case "placeholder":
            return f"the response is only a placeholder: {issue.evidence!r}"
        case "truncated_response":
            return f"the response looks cut off: {issue.evidence}"
        case "refusal":
            return f"the response refuses: {issue.evidence!r}"
        case "ai_boilerplate":
            return f"AI-assistant boilerplate in the response: {issue.evidence!r}"
        case "echo":
            return f"the response only repeats the prompt: {issue.evidence!r}"
        case "secret":
            return f"a credential-shaped string in the {side}: {issue.evidence}"
        case "pii":
            return f"personal data in the {side}: {issue.evidence}"
        case "mojibake":
            return f"mis-decoded text (mojibake) in the {side}: {issue.evidence!r}"
        case "control_chars":
            return f"control character in the {side}: {issue.evidence}"
        case "template_slot":
            return f"an unfilled template slot in the {side}: {issue.evidence!r}"
        case "empty_prompt":
            return f"empty prompt ({issue.evidence})"
        case "pos_tag_debris":
            return f"part-of-speech tags left in the {side}: {issue.evidence!r}"
    return f"{issue.kind} in the {side}: {issue.evidence}"


def _normalised(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .!?")


def _code_text(text: str, *, inside_fences: bool = True) -> str:
    """The lines inside ``` fences (or, with ``inside_fences=False``, the prose around them)."""
    inside, kept = False, []
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif inside == inside_fences:
            kept.append(line)
    return "\n".join(kept)


def _outside_code(text: str) -> str:
    return _code_text(text, inside_fences=False)


def _continues_sentence(text: str, start: int) -> bool:
    """Tell whether the word at ``start`` is part of running prose.

    It must be a separate word ("-l", "/g" and "> p" are code), lowercase or after a lowercase
    word ("along Statio"), or alone after a finished sentence — not inside a run of capitalised
    title words.
    """
    if start > 0 and not text[start - 1].isspace():
        return False
    before = text[:start].rstrip()
    previous = before.split()[-1] if before.split() else ""
    if previous and not (previous[-1].isalnum() or previous[-1] in ",;") and not _starts_sentence(text, start):
        return False
    if text[start].islower() or _starts_sentence(text, start):
        return True
    return previous[:1].islower()


def _starts_sentence(text: str, start: int) -> bool:
    """A word after a full stop, a colon or a code fence (or at the very start)."""
    before = text[:start].rstrip()
    return not before or before.endswith((".", "!", "?", ":", "```"))


def _unclosed_brackets(code: str) -> str | None:
    """Brackets opened and never closed, ignoring string literals and line comments."""
    stripped = _LINE_COMMENT.sub("", _STRING_LITERAL.sub('""', code))
    stack: list[str] = []
    for char in stripped:
        if char in _OPEN:
            stack.append(char)
        elif char in _CLOSE:
            if stack and _OPEN.index(stack[-1]) == _CLOSE.index(char):
                stack.pop()
            else:
                return None  # mismatched nesting: the heuristic cannot judge this text
    if not stack:
        return None
    counts = Counter(stack)
    return ", ".join(f"{count} '{bracket}'" for bracket, count in counts.items())


def _unterminated_string(code: str) -> str | None:
    """A quote opened on the last line and never closed (strings rarely span lines)."""
    last = code.splitlines()[-1]
    rest = _LINE_COMMENT.sub("", _STRING_LITERAL.sub('""', last))
    quote = next((q for q in ('"', "'") if rest.count(q) % 2 == 1), None)
    return None if quote is None else f"a string opened with {quote} is never closed"


def _cut_identifier(code: str) -> str | None:
    """Find code cut in the middle of a name.

    That is a last identifier that occurs nowhere earlier but starts one that does ("seque" of
    "sequence").
    """
    last = code.splitlines()[-1]
    if _LINE_COMMENT.search(last) or last.lstrip().startswith(("*", "/*", "#", "--")):
        return None  # a comment: prose, not a name
    if not (last[:1].isspace() or is_code_line(last)):
        return None  # an explanation after the code
    match = _TRAILING_IDENTIFIER.search(code, max(0, len(code) - 80))
    if match is None or match.group(1) in _BLOCK_ENDS:
        return None
    fragment = match.group(1)
    earlier = set(_IDENTIFIER.findall(code, 0, match.start()))
    if fragment in earlier:
        return None
    completion = min((name for name in earlier if name.startswith(fragment) and name != fragment), default=None)
    return None if completion is None else f"ends mid-name: '{fragment}' looks like a cut '{completion}'"


def _cut_mid_sentence(text: str) -> bool:
    r"""Tell whether a last line stops on a lowercase word after sentences that did end properly.

    Poems and signatures ("Yours sincerely,\\nJane Austen") stop without punctuation too,
    so earlier lines must mostly end with punctuation, and the last word must be lowercase.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1]
    if _TERMINAL.search(last) or not last[-1].isalnum() or is_code_line(last):
        return False
    words = last.split()
    if len(words) < 4 or not _PLAIN_WORD.fullmatch(words[-1]) or not words[-1][0].islower():
        return False  # short, capitalised (a name, a title) or not a word (a URL, an address)
    earlier = lines[:-1]
    if earlier:
        return sum(bool(_TERMINAL.search(line)) for line in earlier) >= 0.5 * len(earlier)
    return bool(re.search(r"[.!?][\"'”’)]?\s+\S", last)) or len(words) >= 12
