"""The structural shape of a response: how it ends, whether it holds code or JSON, which
markdown it uses, how it opens, and how long it is.

The format check compares these features within a cluster; the reference fine-tune reuses
them to classify model generations, so everything here is a pure function of the text:
:func:`describe_format` gives a :class:`ResponseFormat`, :func:`format_signature` a short
human-readable key such as ``"final:####"``, ``"code:fenced"`` or ``"json:object"``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from dataaudit.context import AuditContext

#: Word-count bands, as (upper bound inclusive, name); longer than the last is "very long".
LENGTH_BANDS = ((0, "empty"), (1, "word"), (20, "short"), (200, "medium"), (1000, "long"))
LENGTH_BAND_ORDER = tuple(name for _, name in LENGTH_BANDS) + ("very long",)
#: Single-line answers up to this many words are "short answers" (casing/punctuation matter).
SHORT_ANSWER_WORDS = 12
#: JSON is only parsed below this size, to keep feature extraction linear and cheap.
MAX_JSON_CHARS = 200_000

_NUMBER = r"[-+−]?[$€£]?\s?\d[\d,]*(?:\.\d+)?%?"
#: Final-answer conventions, tried in order on the last non-empty line.
FINAL_MARKERS: tuple[tuple[str, re.Pattern], ...] = (
    ("####", re.compile(r"^#{4}\s*(?P<answer>\S.*?)\s*$")),
    ("boxed", re.compile(r"\\boxed\{(?P<answer>[^{}]*)\}")),
    ("answer-is", re.compile(r"\b(?:the\s+)?(?:final\s+|correct\s+)?answer\s+is\s*:?\s*\**(?P<answer>[^\s*]+?)\**\s*[.!]?\s*$", re.IGNORECASE)),
    ("answer-colon", re.compile(r"^\**(?:final\s+)?answer\**\s*:\s*\**(?P<answer>.+?)\**\s*\.?$", re.IGNORECASE)),
    ("bold", re.compile(rf"^\*\*(?P<answer>{_NUMBER}|[^*\s]{{1,30}})\*\*\s*\.?$")),
    ("bare-number", re.compile(rf"^(?P<answer>{_NUMBER})\s*\.?$")),
)
#: How each final-answer convention looks, with ``{answer}`` for the value.
FINAL_TEMPLATES = {
    "####": "#### {answer}",
    "boxed": "\\boxed{{{answer}}}",
    "answer-is": "The answer is {answer}.",
    "answer-colon": "Answer: {answer}",
    "bold": "**{answer}**",
    "bare-number": "{answer}",
}

FENCE = re.compile(r"^\s*(?:`{3,}|~{3,})\s*(?P<info>[\w+#.-]*)[^\n`]*$", re.MULTILINE)
#: Line starts that only code has (matched at the start of a stripped line).
_CODE_LINE = re.compile(
    r"""(?x)
    (?:def|async\s+def)\s+\w+\s*\(            # Python
    | class\s+\w+\s*[:({<]
    | class\s+\w+(?:\s+(?:extends|implements)\s+\w+)?\s*$
    | (?:import\s+[\w.*{]|from\s+[\w.]+\s+import\s)
    | (?:if|elif|else|for|while|try|except|finally|with|switch|case|default)\b[^.]*:$
    | (?:if|for|while|switch|catch)\s*\(
    | (?:return|yield|raise|throw|break|continue|pass)\b(?:\s|;|$)
    | \#(?:include|define|ifndef|ifdef|endif|pragma|!)
    | (?:using\s+[\w.]+|namespace\s+\w+|package\s+[\w.]+)
    | (?:public|private|protected|static|final|abstract|override|virtual|void|int|float|double|char|bool
       |boolean|long|short|unsigned|String|auto)\s+[\w<>\[\],\s*&]*\w+\s*[(=;]
    | (?:let|const|var|mut|val)\s+\w+
    | (?:function\s*\w*\s*\(|fn\s+\w+|func\s+\w+|sub\s+\w+)
    | (?:SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|VIEW|DATABASE)|ALTER\s+TABLE|DROP\s+TABLE|WITH\s+\w+\s+AS)\b
    | <(?:!DOCTYPE|\?php|/?[a-zA-Z][\w-]*(?:\s[^>]*)?/?>)
    | @\w+(?:\(.*\))?$                          # decorator / annotation
    | \$\w+\s*=                                 # shell / PHP / Perl variable
    | .*;\s*(?:do|then)$ | (?:done|fi|esac)$       # shell blocks
    | (?:echo|printf|export|sudo|cd|ls|mkdir|chmod|grep|awk|sed|curl|pip|npm|git|find|wc|cat|touch|rm|cp|mv|tar|docker|kubectl|apt|brew|yarn)\s
    | \*?[A-Za-z_][\w.]*(?:\[[^\]]*\])?(?:\s*,\s*\*?[A-Za-z_][\w.]*)*\s*(?:[-+*/%|&^]|//|\*\*)?=\s*[^=\s](?![^=]*\s=\s)   # assignment, not a math chain
    | [A-Za-z_][\w.:]*\(.*\)\s*;?$             # call
    | [)\]}]+[;,)]*$                            # closing brackets
    """
)
#: Statement or block ends.
_CODE_LINE_ENDS = (";", "{", "}")
_DOCSTRING_OPENERS = ('"""', "'''", 'r"""', "r'''", 'b"""', 'u"""')
_TRAILING_COMMENT = re.compile(r"\S\s+//\s?\S")
_NEUTRAL_LINE = re.compile(r"^(?://|/\*|\*/|\*\s|--\s|#(?!#)|<!--)")
_BULLET = re.compile(r"^\s*[-*+•]\s+\S")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+\S")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$")
_HEADING = re.compile(r"^#{1,6}\s+\S")
_OPENER = re.compile(
    r"^(?:(?:sure|certainly|of course|absolutely|okay|ok|alright|great question|good question|no problem)\b\s*[!,.]"
    r"|(?:i['’]d|i would|i['’]m|i am) (?:be )?(?:happy|glad|delighted) to\b"
    r"|here(?:['’]s| is| are)\b[^\n]{0,80}:\s*$)",
    re.IGNORECASE,
)
_NUMERIC = re.compile(rf"^{_NUMBER}$")
_LABEL_LIKE = re.compile(r"^[\w-]+(?:[_:/.][\w-]+)*$")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ResponseFormat:
    """Structural features of one response; every field is cheap, deterministic and total.

    ``final_marker`` is the final-answer convention of the last line (a key of
    :data:`FINAL_TEMPLATES`) and ``final_answer`` its value; ``code`` is ``"fenced"``,
    ``"bare"`` or ``None``; ``short_kind`` is ``"number"``, ``"label"`` (one token) or
    ``"phrase"`` for single-line answers of at most :data:`SHORT_ANSWER_WORDS` words.
    """

    empty: bool
    words: int
    lines: int
    last_line: str
    final_marker: str | None
    final_answer: str | None
    code: str | None
    code_language: str | None
    fences_balanced: bool
    json: str | None
    list_style: str | None
    table: bool
    headings: bool
    opener: str | None
    short_kind: str | None
    initial_case: str | None
    trailing: str
    length_band: str
    #: How the turn calls tools, where it does (see :func:`dataaudit.io.structure.call_style_expr`);
    #: ``None`` for a text answer. Generations judged from text alone leave it ``None``.
    call_style: str | None = None


_FORMAT_VALUES = operator.attrgetter(*(field.name for field in dataclasses.fields(ResponseFormat)))


def describe_format(text: str | None) -> ResponseFormat:
    """The structural features of ``text`` (``None`` counts as empty)."""
    text = text or ""
    stripped = text.strip()
    lines = [line.rstrip() for line in stripped.splitlines() if line.strip()]
    words = len(_WORD.findall(stripped))
    last_line = lines[-1].strip() if lines else ""

    fence_lines = FENCE.findall(stripped)
    fenced = bool(fence_lines)
    prose_lines = _outside_fences(lines) if fenced else lines
    json_kind = _json_kind(stripped, fenced=fenced)
    bare = not fenced and json_kind is None and _looks_like_code(lines)
    code = "fenced" if fenced else ("bare" if bare else None)
    language = next((info.lower() for info in fence_lines if info), None) if fenced else None
    marker, answer = _final_marker(last_line, multi_line=len(lines) > 1)
    markdown_lines = [] if bare else (prose_lines[:-1] if marker == "####" else prose_lines)
    list_style = _list_style(markdown_lines)

    short_kind = initial_case = None
    if len(lines) == 1 and 0 < words <= SHORT_ANSWER_WORDS and code is None and json_kind is None and marker is None:
        if _NUMERIC.match(stripped.rstrip(".")):
            short_kind = "number"
        else:
            short_kind = "label" if words == 1 or _LABEL_LIKE.match(stripped) else "phrase"
        first_alpha = next((char for char in stripped if char.isalpha()), "")
        initial_case = None if not first_alpha else ("upper" if first_alpha.isupper() else "lower")
    opener_match = _OPENER.match(lines[0].strip()) if lines and not bare else None

    return ResponseFormat(
        empty=not stripped,
        words=words,
        lines=len(lines),
        last_line=last_line,
        final_marker=marker,
        final_answer=answer,
        code=code,
        code_language=language,
        fences_balanced=len(fence_lines) % 2 == 0,
        json=json_kind,
        list_style=list_style,
        table=_has_table(markdown_lines),
        headings=any(_HEADING.match(line) for line in markdown_lines),
        opener=opener_match.group(0).strip() if opener_match else None,
        short_kind=short_kind,
        initial_case=initial_case,
        trailing=_trailing(stripped),
        length_band=length_band(words),
    )


def answer_text_expr() -> "pl.Expr":
    """Select ``answer_text``: the text of a final turn that calls tools (null for any other row).

    Its calls are the tools check's to judge; read as prose they would look truncated or terse.
    """
    import polars as pl

    last = pl.col("messages").list.last()
    calls = last.struct.field("tool_calls").list.len().fill_null(0) > 0
    return (pl.when((last.struct.field("role") == "assistant") & calls)
            .then(last.struct.field("content").fill_null("")).otherwise(None).alias("answer_text"))


def response_formats(ctx: "AuditContext") -> "pl.Series":
    """Each row's judged response described, once per audit (the quality and format checks read it).

    The judged response is the text of a final turn that calls tools (:func:`answer_text_expr`),
    else the response; null where that is missing or blank. Described on the engine's workers.
    """
    import polars as pl

    def described() -> pl.Series:
        texts = ctx.dataset.frame.select(pl.coalesce(answer_text_expr(), pl.col("response")).alias("text"))
        return ctx.map_frame(formats_frame, texts).get_column("format")

    return ctx.shared("response_formats", described)


def formats_frame(frame: "pl.DataFrame") -> "pl.DataFrame":
    """A ``format`` struct column of :class:`ResponseFormat` fields for each row's ``text``.

    Null where the text is missing or blank. Rows go to polars as field tuples
    (``dataclasses.asdict`` deep-copies every field: it cost more than describing).
    """
    import polars as pl

    fields = _format_fields()
    absent = (None,) * len(fields)
    values = [absent if text is None or not text.strip() else _FORMAT_VALUES(describe_format(text))
              for text in frame.get_column("text")]
    present = pl.Series([value is not absent for value in values], dtype=pl.Boolean)
    described = pl.DataFrame(values, schema=fields, orient="row")
    return described.select(pl.when(present).then(pl.struct(pl.all())).alias("format"))


def formats_of(column: "pl.Series") -> "list[ResponseFormat | None]":
    """The :class:`ResponseFormat` of each row of a ``format`` column (``None`` where null)."""
    present = column.is_not_null().to_list()
    return [ResponseFormat(*fields) if has else None for fields, has in zip(column.struct.unnest().iter_rows(), present)]


@functools.cache
def _format_fields() -> "dict[str, pl.DataType]":
    """:class:`ResponseFormat`'s fields in order, with their polars types."""
    import polars as pl

    return {field.name: {"bool": pl.Boolean, "int": pl.Int64}.get(str(field.type), pl.String)
            for field in dataclasses.fields(ResponseFormat)}


def format_signature(fmt: ResponseFormat) -> str:
    """The dominant structural trait of a response, most specific first."""
    if fmt.call_style is not None:
        return f"call:{fmt.call_style}"
    if fmt.empty:
        return "empty"
    if fmt.final_marker is not None:
        return f"final:{fmt.final_marker}"
    if fmt.json is not None:
        return f"json:{fmt.json}"
    if fmt.code is not None:
        return f"code:{fmt.code}"
    if fmt.table:
        return "markdown:table"
    if fmt.list_style is not None:
        return f"list:{fmt.list_style}"
    if fmt.headings:
        return "markdown:headings"
    if fmt.short_kind is not None:
        return f"short:{fmt.short_kind}"
    return "prose"


def final_line(marker: str, answer: str | None) -> str:
    """How a final line looks under ``marker``, e.g. ``final_line("####", "42") == "#### 42"``."""
    value = answer if answer else ("<number>" if marker == "bare-number" else "<answer>")
    return FINAL_TEMPLATES[marker].format(answer=value)


def final_shape(marker: str) -> str:
    """A final-answer convention as a pattern, e.g. ``"#### <number>"``."""
    return FINAL_TEMPLATES[marker].format(answer="<number>")


def length_band(words: int) -> str:
    for limit, name in LENGTH_BANDS:
        if words <= limit:
            return name
    return "very long"


def _final_marker(last_line: str, *, multi_line: bool) -> tuple[str | None, str | None]:
    for name, pattern in FINAL_MARKERS:
        if name == "bare-number" and not multi_line:
            continue
        match = pattern.search(last_line)
        if match is not None and len(match.group("answer")) <= 80:
            return name, match.group("answer").strip().rstrip(".") or None
    return None, None


def _outside_fences(lines: list[str]) -> list[str]:
    outside, inside = [], False
    for line in lines:
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            outside.append(line)
    return outside


def _looks_like_code(lines: list[str]) -> bool:
    """Mostly code-shaped lines, or a block of several (prose around code is still code).

    An indented line right after a code line is code too (a block body), and docstrings
    are neither code nor prose.
    """
    code = counted = 0
    in_docstring = previous_was_code = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(_DOCSTRING_OPENERS):
            quotes = stripped.lstrip("rbu")[:3]
            if not (len(stripped.lstrip("rbu")) > 3 and stripped.endswith(quotes)):
                in_docstring = not in_docstring
            continue
        if in_docstring or _NEUTRAL_LINE.match(stripped):
            continue
        counted += 1
        is_code = is_code_line(stripped) or (previous_was_code and line[:1].isspace())
        code += is_code
        previous_was_code = is_code
    if code == 0:
        return False
    share = code / max(counted, 1)
    return share >= 0.5 or (code >= 3 and share >= 0.3)


def is_code_line(line: str) -> bool:
    """Whether one line looks like a statement of a programming language rather than prose."""
    line = line.strip()
    if line.endswith(_CODE_LINE_ENDS) or _CODE_LINE.match(line):
        return True
    return " //" in line and bool(_TRAILING_COMMENT.search(line))


def _json_kind(stripped: str, *, fenced: bool) -> str | None:
    body = stripped
    if fenced:
        inner = [line for line in stripped.splitlines() if not FENCE.match(line)]
        if len(FENCE.findall(stripped)) != 2 or not (stripped.startswith(("```", "~~~")) and stripped.endswith(("```", "~~~"))):
            return None
        body = "\n".join(inner).strip()
    if len(body) > MAX_JSON_CHARS or not body or (body[0], body[-1]) not in {("{", "}"), ("[", "]")}:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return "object" if isinstance(value, dict) else "array"


def _has_table(lines: list[str]) -> bool:
    return sum(bool(_TABLE_ROW.match(line)) for line in lines) >= 2 and any(_TABLE_RULE.match(line) for line in lines)


def _list_style(lines: list[str]) -> str | None:
    bullets = sum(bool(_BULLET.match(line)) for line in lines)
    numbered = sum(bool(_NUMBERED.match(line)) for line in lines)
    if max(bullets, numbered) < 2:
        return None
    return "bullets" if bullets >= numbered else "numbered"


def _trailing(stripped: str) -> str:
    if not stripped:
        return "none"
    last = stripped[-1]
    return last if last in ".!?:;," else "none"
