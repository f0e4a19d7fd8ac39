"""Format adapters: one class per instruction-dataset format, each mapping a record to the canonical shape.

The canonical shape is messages, system, prompt, response, label (see
:mod:`dataaudit.io.canonical`, which also holds the field readers the adapters share).
Adapters are registered by name; :func:`detect_format` picks the one that fits most of a
file's first records. A record that lacks what its format needs raises :class:`RecordError`
with a message saying what was expected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from dataaudit.errors import UsageError
from dataaudit.io.canonical import (
    LABEL_FIELDS,
    MAX_SHOWN_CHARS,
    ROLE_ALIASES,
    TEXT_FIELDS,
    CanonicalRecord,
    RecordError,
    _join,
    _label,
    _parse_turns,
    _simple,
    _text,
    _with_label_answer,
    assistant_turn,
    from_turns,
    shown_key,
)
from dataaudit.io.structure import calls_from_value, message

# The record shape and field readers moved to dataaudit.io.canonical; their public names are still
# importable from here, as callers (dataaudit.io.load among them) have always imported them.
__all__ = [
    "FORMATS", "LABEL_FIELDS", "MAX_SHOWN_CHARS", "ROLE_ALIASES", "TEXT_FIELDS", "XLAM", "Alpaca", "CanonicalRecord",
    "Dolly", "FieldMapping", "FormatAdapter", "MappedFields", "NoFormat", "OpenAIMessages", "PlainText",
    "PromptCompletion", "QuestionAnswer", "RecordError", "ShareGPT", "TextLabel", "Turns", "WithOverrides",
    "assistant_turn", "detect_format", "format_names", "from_turns", "make_adapter", "shown_key",
]

class FormatAdapter:
    """Base adapter. ``signature`` lists key sets; a record fits when it has every key of one."""

    name: ClassVar[str]
    description: ClassVar[str]
    signature: ClassVar[tuple[frozenset[str], ...]]
    excludes: ClassVar[frozenset[str]] = frozenset()

    def fits(self, keys: Iterable[str]) -> bool:
        """Tell whether a record with these keys is in this format (detection votes with it)."""
        keyset = set(keys)
        return not (keyset & self.excludes) and any(required <= keyset for required in self.signature)

    def convert(self, record: Mapping[str, Any]) -> CanonicalRecord:
        """Map one parsed record to the canonical shape; raise :class:`RecordError` naming what is missing."""
        raise NotImplementedError


class OpenAIMessages(FormatAdapter):
    """OpenAI chat messages, tool calls and declared tools (``functions`` in the older API) included."""

    name = "openai"
    description = "OpenAI chat: {messages: [{role, content, tool_calls?}, ...][, tools]}"
    signature = (frozenset({"messages"}),)

    def convert(self, record):
        """Read the ``messages`` turns; the tools are ``tools``, else the legacy ``functions``."""
        messages = _parse_turns(record.get("messages"), "messages", role_key="role", content_key="content")
        tools = record.get("tools", record.get("functions"))
        return from_turns(messages, tools=tools)


class ShareGPT(FormatAdapter):
    """ShareGPT conversations (``from``/``value`` turns), LLaMA-Factory's tool-call roles included."""

    name = "sharegpt"
    description = "ShareGPT: {conversations: [{from, value}, ...][, system, tools]}"
    signature = (frozenset({"conversations"}),)

    def convert(self, record):
        """Read the ``conversations`` turns; a top-level ``system`` becomes the first turn unless one exists."""
        turns = record.get("conversations")
        messages = _parse_turns(turns, "conversations", role_key="from", content_key="value")
        system = record.get("system")
        if isinstance(system, str) and system.strip() and not any(m["role"] == "system" for m in messages):
            messages.insert(0, message("system", system))
        return from_turns(messages, tools=record.get("tools"))


class XLAM(FormatAdapter):
    """Salesforce xLAM / APIGen function calling.

    The query, its tools and the answer calls, the last two as JSON strings.
    """

    name = "xlam"
    description = "xLAM / APIGen: {query, tools, answers} (tools and answers as JSON)"
    signature = (frozenset({"query", "answers"}),)

    def convert(self, record):
        """Make the query the user turn and the answer calls one assistant turn with no text."""
        query = _text(record, "query")
        answers = record.get("answers")
        calls = [] if answers is None else calls_from_value(answers)
        messages = [message("user", query), message("assistant", "", tool_calls=calls)]
        return from_turns(messages, tools=record.get("tools"))


class Dolly(FormatAdapter):
    """Databricks Dolly: an instruction with optional context; ``category`` stays in the raw record."""

    name = "dolly"
    description = "Dolly: {instruction, context, response[, category]}"
    signature = (frozenset({"instruction", "response"}), frozenset({"instruction", "context"}))

    def convert(self, record):
        """Join instruction and context into the prompt; ``response`` answers it."""
        prompt = _join(_text(record, "instruction"), _text(record, "context", required=False))
        return _simple(prompt, _text(record, "response", required=False))


class Alpaca(FormatAdapter):
    """Stanford Alpaca: an instruction with optional input (Dolly's keys exclude it, so Dolly wins)."""

    name = "alpaca"
    description = "Alpaca: {instruction, input, output}"
    signature = (frozenset({"instruction"}),)
    excludes = frozenset({"context", "response"})

    def convert(self, record):
        """Join instruction and input into the prompt; ``output`` answers it, ``system`` if given."""
        prompt = _join(_text(record, "instruction"), _text(record, "input", required=False))
        system = _text(record, "system", required=False)
        return _simple(prompt, _text(record, "output", required=False), system=system or None)


class PromptCompletion(FormatAdapter):
    """A prompt with a completion (or response); with neither, a label field is the answer."""

    name = "prompt_completion"
    description = "{prompt, completion} (or {prompt, label}: classification)"
    signature = (frozenset({"prompt"}),)

    def convert(self, record):
        """Answer the prompt with ``completion``, else ``response``, else a label field."""
        response_key = "completion" if "completion" in record else "response"
        return _with_label_answer(_text(record, "prompt"), _text(record, response_key, required=False), record)


class QuestionAnswer(FormatAdapter):
    """A question with an answer; with no answer, a label field is the answer."""

    name = "question_answer"
    description = "{question, answer} (or {question, label}: classification)"
    signature = (frozenset({"question"}),)

    def convert(self, record):
        """Answer the question with ``answer``, else a label field."""
        return _with_label_answer(_text(record, "question"), _text(record, "answer", required=False), record)


class Turns(FormatAdapter):
    """MT-Bench style: a list of user turns, optionally with reference answers."""

    name = "turns"
    description = "{turns: [user text, ...][, reference: [answer, ...]]}"
    signature = (frozenset({"turns"}),)

    def convert(self, record):
        """Interleave the user turns with their reference answers where given."""
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
        """Need a text field and a label field (``--label-field``, a known name or one starting ``label``)."""
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
        """Make the first text field the prompt and the label its answer."""
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
        """Make the first text field the prompt, with no response."""
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
        """Tell whether no field was named, so a detected format applies unchanged."""
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
        """Need only the named prompt field."""
        return self.mapping.prompt in set(keys)

    def convert(self, record):
        """Read each named field; with no response, the label is the answer."""
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
        """Fit where the detected format fits."""
        return self.base.fits(keys)

    def convert(self, record):
        """Convert with the detected format, then replace what the named fields give."""
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
        """Reject every record: no format could be detected."""
        raise RecordError("no format could be detected")


# Order matters: earlier adapters win ties (Dolly before Alpaca, classification before plain text).
FORMATS: dict[str, type[FormatAdapter]] = {
    adapter.name: adapter
    for adapter in (OpenAIMessages, ShareGPT, XLAM, Dolly, Alpaca, PromptCompletion, QuestionAnswer, Turns, TextLabel,
                    PlainText)
}


def format_names() -> list[str]:
    """List every format name ``--format`` accepts, ``fields`` (explicit field names) included."""
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
    """Name the format most of the first ``sample`` records fit, or ``None`` when none fits half."""
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
