"""Format adapters: one class per instruction-dataset format, each mapping a record to the
canonical shape (messages, system, prompt, response, label).

Adapters are registered by name; :func:`detect_format` picks the one that fits most of a
file's first records. A record that lacks what its format needs raises :class:`RecordError`
with a message saying what was expected.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from dataaudit.errors import UsageError
from dataaudit.io.structure import (
    THINK_OPEN,
    call_from_object,
    calls_from_value,
    hermes_calls,
    hermes_tools,
    message,
    normalize_tools,
    render_answer,
    split_reasoning,
)


class RecordError(ValueError):
    """A record does not have the shape its format needs."""


@dataclass(frozen=True, slots=True)
class CanonicalRecord:
    """One record in the canonical shape. ``messages`` hold the structure (see
    :mod:`dataaudit.io.structure`); ``response`` is the final assistant turn rendered as its
    answer plus its calls; ``tools`` the declared tools as one JSON text, or ``None``."""

    messages: list[dict[str, Any]]
    system: str | None
    prompt: str
    response: str | None
    label: str | None
    tools: str | None = None


ROLE_ALIASES = {
    "user": "user", "human": "user", "prompter": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant",
    "system": "system",
    "tool": "tool", "function": "tool", "ipython": "tool",
    # LLaMA-Factory's ShareGPT tool calls: the assistant's call, then the tool's answer.
    "function_call": "assistant", "observation": "tool",
}
TEXT_FIELDS = ("text", "sentence", "utterance", "query", "content")
LABEL_FIELDS = ("label", "intent", "category", "class", "sentiment", "topic", "labels")


#: Longest data-derived text (a key, a role) quoted in an error message.
MAX_SHOWN_CHARS = 60


def shown_key(value: Any) -> str:
    """A data-derived name fit for a one-line message: control characters escaped, long ones cut."""
    text = str(value)
    cut = text[:MAX_SHOWN_CHARS]
    printable = "".join(char if char.isprintable() else repr(char)[1:-1] for char in cut)
    return printable + ("…" if len(text) > MAX_SHOWN_CHARS else "")


def _shown(value: Any) -> str:
    """``repr`` of a data value for a message, cut to :data:`MAX_SHOWN_CHARS`."""
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        value = value[:MAX_SHOWN_CHARS]  # repr of the whole of a 20 MB string would be wasted
    try:
        text = repr(value)
    except ValueError:  # an integer over Python's digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def _text(record: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing field {_shown(key)}")
        return None
    if not isinstance(value, str):
        raise RecordError(f"field {_shown(key)} should be a string, got {type(value).__name__}")
    return value


def _label(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(f"field {_shown(key)} should be a string or number label, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"field {_shown(key)} should be a finite number label, got {value}")
    try:
        return str(value)
    except ValueError:  # an integer over Python's 4,300-digit conversion limit
        raise RecordError(f"field {_shown(key)} is a number too long to use as a label") from None


def _label_as_answer(record: Mapping[str, Any]) -> str | None:
    """The first string or number among :data:`LABEL_FIELDS`: for a prompt with no response,
    ``{prompt, label}`` is classification data and the label is its answer (as in
    :class:`TextLabel`); dropping it would audit unlabelled prompts. Other values (a multi-label
    list) stay in the raw record only."""
    for key in LABEL_FIELDS:
        value = record.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return _label(record, key)
    return None


def _join(*parts: str | None) -> str:
    return "\n\n".join(part for part in parts if part and part.strip())


def _content_text(content: Any, where: str) -> str:
    """Message content as text: a string, or OpenAI's list of typed parts."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    raise RecordError(f"{where} should be a string, got {type(content).__name__}")


def from_turns(messages: list[dict[str, Any]], *, label: str | None = None, tools: Any = None) -> CanonicalRecord:
    """Derive system/prompt/response from a full conversation, keeping every turn.

    A badly structured conversation (an assistant first, two user turns in a row, a system
    message in the middle, no user turn, ending on a user turn) is still a record: the
    ``turns`` check flags it, export can drop or fix it. The response is the final turn when it
    is an assistant's (its answer plus its calls, see :func:`render_answer`), else ``None``
    (nothing answers the last turn); the prompt is the last user turn before it, or ``""``
    when there is none. With no ``tools`` field, tools listed in the system prompt
    (``<tools>…</tools>``, Hermes style) are the row's declared tools.
    """
    system = _join(*(m["content"] for m in messages if m["role"] == "system")) or None
    ends_on_assistant = bool(messages) and messages[-1]["role"] == "assistant"
    response = render_answer(messages[-1]) if ends_on_assistant else None
    before = messages[:-1] if ends_on_assistant else messages
    prompt = next((m["content"] for m in reversed(before) if m["role"] == "user"), "")
    if tools is None:
        tools = hermes_tools(system)
    return CanonicalRecord(messages, system, prompt, response, label, normalize_tools(tools))


def assistant_turn(content: str, *, calls: list[dict] | None = None, reasoning: str | None = None) -> dict[str, Any]:
    """An assistant message with its reasoning and ``<tool_call>`` blocks taken out of the text."""
    if reasoning is None and THINK_OPEN in content:
        reasoning, content = split_reasoning(content)
    found, content = hermes_calls(content)
    return message("assistant", content, tool_calls=[*(calls or ()), *found], reasoning=reasoning)


class FormatAdapter:
    """Base adapter. ``signature`` lists key sets; a record fits when it has every key of one."""

    name: ClassVar[str]
    description: ClassVar[str]
    signature: ClassVar[tuple[frozenset[str], ...]]
    excludes: ClassVar[frozenset[str]] = frozenset()

    def fits(self, keys: Iterable[str]) -> bool:
        keyset = set(keys)
        return not (keyset & self.excludes) and any(required <= keyset for required in self.signature)

    def convert(self, record: Mapping[str, Any]) -> CanonicalRecord:
        raise NotImplementedError


def _simple(prompt: str, response: str | None, *, system: str | None = None, label: str | None = None) -> CanonicalRecord:
    messages = [message("system", system)] if system else []
    messages.append(message("user", prompt))
    if response is None:
        return CanonicalRecord(messages, system, prompt, None, label)
    # A label is the answer as written; a free-text response may carry reasoning or call blocks.
    messages.append(message("assistant", response) if label is not None else assistant_turn(response))
    return CanonicalRecord(messages, system, prompt, render_answer(messages[-1]), label)


class OpenAIMessages(FormatAdapter):
    name = "openai"
    description = "OpenAI chat: {messages: [{role, content, tool_calls?}, ...][, tools]}"
    signature = (frozenset({"messages"}),)

    def convert(self, record):
        messages = _parse_turns(record.get("messages"), "messages", role_key="role", content_key="content")
        tools = record.get("tools", record.get("functions"))
        return from_turns(messages, tools=tools)


class ShareGPT(FormatAdapter):
    name = "sharegpt"
    description = "ShareGPT: {conversations: [{from, value}, ...][, system, tools]}"
    signature = (frozenset({"conversations"}),)

    def convert(self, record):
        turns = record.get("conversations")
        messages = _parse_turns(turns, "conversations", role_key="from", content_key="value")
        system = record.get("system")
        if isinstance(system, str) and system.strip() and not any(m["role"] == "system" for m in messages):
            messages.insert(0, message("system", system))
        return from_turns(messages, tools=record.get("tools"))


class XLAM(FormatAdapter):
    """Salesforce xLAM / APIGen function calling: the query, its tools and the answer calls,
    the last two as JSON strings."""

    name = "xlam"
    description = "xLAM / APIGen: {query, tools, answers} (tools and answers as JSON)"
    signature = (frozenset({"query", "answers"}),)

    def convert(self, record):
        query = _text(record, "query")
        answers = record.get("answers")
        calls = [] if answers is None else calls_from_value(answers)
        messages = [message("user", query), message("assistant", "", tool_calls=calls)]
        return from_turns(messages, tools=record.get("tools"))


#: Roles whose turn is the assistant calling a tool, its text the call (LLaMA-Factory's ShareGPT).
_CALL_ROLES = frozenset({"function_call"})


def _parse_turns(turns: Any, field: str, *, role_key: str, content_key: str) -> list[dict[str, Any]]:
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"field {field!r} should be a non-empty list of turns")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"{field}[{index}] should be an object with {role_key!r} and {content_key!r}")
        written = turn.get(role_key, turn.get("role"))
        if not isinstance(written, str):
            raise RecordError(f"{field}[{index}] has no {role_key!r} string, got {_shown(written)}")
        # An unknown role is kept as written: the turns check flags it (kind bad_role) instead of losing the row.
        role = ROLE_ALIASES.get(written.strip().lower(), written)
        content = _content_text(turn.get(content_key, turn.get("content")), f"{field}[{index}].{content_key}")
        messages.append(_structured_turn(role, written.strip().lower(), content, turn))
    return messages


def _structured_turn(role: str, written: str, content: str, turn: Mapping[str, Any]) -> dict[str, Any]:
    """One turn with its calls, call id, tool name and reasoning read from whichever fields hold them."""
    if written in _CALL_ROLES:
        return message("assistant", "", tool_calls=calls_from_value(content))
    name = turn.get("name")
    name = name if isinstance(name, str) else None
    if role == "assistant":
        calls = []
        if isinstance(turn.get("tool_calls"), list):
            calls = [call_from_object(call) for call in turn["tool_calls"]]
        if isinstance(turn.get("function_call"), Mapping):
            calls.append(call_from_object(turn["function_call"], style="function_call"))
        reasoning = turn.get("reasoning_content", turn.get("reasoning"))
        reasoning = reasoning if isinstance(reasoning, str) else None
        return assistant_turn(content, calls=calls, reasoning=reasoning)
    call_id = turn.get("tool_call_id")
    return message(role, content, tool_call_id=None if call_id is None else str(call_id), name=name)


class Dolly(FormatAdapter):
    name = "dolly"
    description = "Dolly: {instruction, context, response[, category]}"
    signature = (frozenset({"instruction", "response"}), frozenset({"instruction", "context"}))

    def convert(self, record):
        prompt = _join(_text(record, "instruction"), _text(record, "context", required=False))
        return _simple(prompt, _text(record, "response", required=False))


class Alpaca(FormatAdapter):
    name = "alpaca"
    description = "Alpaca: {instruction, input, output}"
    signature = (frozenset({"instruction"}),)
    excludes = frozenset({"context", "response"})

    def convert(self, record):
        prompt = _join(_text(record, "instruction"), _text(record, "input", required=False))
        system = _text(record, "system", required=False)
        return _simple(prompt, _text(record, "output", required=False), system=system or None)


class PromptCompletion(FormatAdapter):
    name = "prompt_completion"
    description = "{prompt, completion} (or {prompt, label}: classification)"
    signature = (frozenset({"prompt"}),)

    def convert(self, record):
        response_key = "completion" if "completion" in record else "response"
        return _with_label_answer(_text(record, "prompt"), _text(record, response_key, required=False), record)


class QuestionAnswer(FormatAdapter):
    name = "question_answer"
    description = "{question, answer} (or {question, label}: classification)"
    signature = (frozenset({"question"}),)

    def convert(self, record):
        return _with_label_answer(_text(record, "question"), _text(record, "answer", required=False), record)


def _with_label_answer(prompt: str, response: str | None, record: Mapping[str, Any]) -> CanonicalRecord:
    """A prompt and its response; with no response, a label field is the answer (see
    :func:`_label_as_answer`). With a response, a label field stays in the raw record: a task
    category beside a completion is no class to predict (``--label-field`` makes it one)."""
    if response is not None:
        return _simple(prompt, response)
    label = _label_as_answer(record)
    return _simple(prompt, label, label=label)


class Turns(FormatAdapter):
    """MT-Bench style: a list of user turns, optionally with reference answers."""

    name = "turns"
    description = "{turns: [user text, ...][, reference: [answer, ...]]}"
    signature = (frozenset({"turns"}),)

    def convert(self, record):
        turns = record.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise RecordError("field 'turns' should be a non-empty list of strings")
        references = record.get("reference")
        references = references if isinstance(references, list) else []
        messages = []
        for index, turn in enumerate(turns):
            messages.append(message("user", turn))
            if index < len(references) and isinstance(references[index], str):
                messages.append(message("assistant", references[index]))
        return from_turns(messages)


class TextLabel(FormatAdapter):
    """Classification-style data: the label doubles as the response a model should give."""

    name = "text_label"
    description = "classification: {text, label|intent|category|...}"
    signature = tuple(frozenset({text, label}) for text in TEXT_FIELDS for label in LABEL_FIELDS)

    def __init__(self, *, label_field: str | None = None):
        self.label_field = label_field

    def fits(self, keys):
        keyset = set(keys)
        return any(key in keyset for key in TEXT_FIELDS) and self._label_key(keyset) is not None

    def _label_key(self, keys: set[str]) -> str | None:
        if self.label_field is not None:
            return self.label_field if self.label_field in keys else None
        for key in LABEL_FIELDS:
            if key in keys:
                return key
        prefixed = sorted(key for key in keys if key.startswith("label"))
        return prefixed[0] if prefixed else None

    def convert(self, record):
        text_key = next((key for key in TEXT_FIELDS if key in record), None)
        if text_key is None:
            raise RecordError(f"missing a text field (one of {', '.join(TEXT_FIELDS)})")
        label_key = self._label_key(set(record))
        label = _label(record, label_key) if label_key else None
        if label is None:
            raise RecordError("missing a label field (label, intent, category, ...)")
        return _simple(_text(record, text_key), label, label=label)


class PlainText(FormatAdapter):
    """Prompts only (typical of production traffic samples)."""

    name = "text"
    description = "prompts only: {text}"
    signature = tuple(frozenset({key}) for key in TEXT_FIELDS)

    def convert(self, record):
        key = next((key for key in TEXT_FIELDS if key in record), TEXT_FIELDS[0])
        return _simple(_text(record, key), None)


@dataclass(frozen=True)
class FieldMapping:
    """Explicit field names from ``--prompt-field`` and friends; ``None`` = not given."""

    prompt: str | None = None
    response: str | None = None
    label: str | None = None
    system: str | None = None

    @property
    def is_empty(self) -> bool:
        return not any((self.prompt, self.response, self.label, self.system))


class MappedFields(FormatAdapter):
    """A user-described format: every field named explicitly."""

    name = "fields"
    description = "explicit --prompt-field/--response-field/--label-field/--system-field"
    signature = ()

    def __init__(self, *, mapping: FieldMapping):
        if mapping.prompt is None:
            raise UsageError("format 'fields' needs --prompt-field")
        self.mapping = mapping

    def fits(self, keys):
        return self.mapping.prompt in set(keys)

    def convert(self, record):
        m = self.mapping
        label = _label(record, m.label) if m.label else None
        response = _text(record, m.response, required=False) if m.response else None
        if response is None and label is not None:
            response = label
        system = _text(record, m.system, required=False) if m.system else None
        return _simple(_text(record, m.prompt), response, system=system or None, label=label)


class WithOverrides(FormatAdapter):
    """A detected format whose response, label or system come from named fields instead."""

    def __init__(self, *, base: FormatAdapter, mapping: FieldMapping):
        self.base = base
        self.mapping = mapping
        self.name = base.name
        self.description = base.description

    def fits(self, keys):
        return self.base.fits(keys)

    def convert(self, record):
        canonical = self.base.convert(record)
        m = self.mapping
        label = _label(record, m.label) if m.label else canonical.label
        response = _text(record, m.response, required=False) if m.response else canonical.response
        system = _text(record, m.system, required=False) if m.system else canonical.system
        messages = [dict(turn) for turn in canonical.messages]
        if m.response and response is not None:
            assistant = [turn for turn in messages if turn["role"] == "assistant"]
            if assistant:
                assistant[-1]["content"] = response
            else:
                messages.append(message("assistant", response))
        return CanonicalRecord(messages, system, canonical.prompt, response, label, canonical.tools)


class NoFormat(FormatAdapter):
    """Stands in when no record could be parsed at all: it accepts nothing."""

    name = "unknown"
    description = "no parseable records"
    signature = ()

    def convert(self, record):
        raise RecordError("no format could be detected")


# Order matters: earlier adapters win ties (Dolly before Alpaca, classification before plain text).
FORMATS: dict[str, type[FormatAdapter]] = {
    adapter.name: adapter
    for adapter in (OpenAIMessages, ShareGPT, XLAM, Dolly, Alpaca, PromptCompletion, QuestionAnswer, Turns, TextLabel,
                    PlainText)
}


def format_names() -> list[str]:
    return [*FORMATS, MappedFields.name]


def make_adapter(name: str, *, mapping: FieldMapping = FieldMapping()) -> FormatAdapter:
    """Build the adapter called ``name``, with field overrides applied."""
    if name == MappedFields.name or mapping.prompt is not None:
        return MappedFields(mapping=mapping)
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}; known formats: {', '.join(format_names())}")
    adapter = TextLabel(label_field=mapping.label) if FORMATS[name] is TextLabel else FORMATS[name]()
    return adapter if mapping.is_empty else WithOverrides(base=adapter, mapping=mapping)


def detect_format(records: Sequence[Mapping[str, Any]], *, mapping: FieldMapping = FieldMapping(), sample: int = 500) -> str | None:
    """The name of the format most of the first ``sample`` records fit, or ``None``."""
    if mapping.prompt is not None:
        return MappedFields.name
    keysets = Counter(frozenset(record) for record in records[:sample])
    total = sum(keysets.values())
    if total == 0:
        return None
    best_name, best_share = None, 0.0
    for name in FORMATS:
        adapter = make_adapter(name, mapping=FieldMapping(label=mapping.label))
        share = sum(count for keys, count in keysets.items() if adapter.fits(keys)) / total
        if share > best_share + 1e-9:
            best_name, best_share = name, share
    return best_name if best_share >= 0.5 else None
