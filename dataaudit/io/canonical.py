"""The canonical record and the field readers every format adapter builds it with.

A format adapter (see :mod:`dataaudit.io.formats`) only says which fields a format keeps where;
reading those fields is shared and lives here: the :class:`CanonicalRecord` shape, typed field
access that raises :class:`RecordError` naming the field, role aliases and the parsing of a list
of chat turns (calls, reasoning, tool answers) into structured messages. Kept apart so a new
format is a few lines, and every format reports bad input the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

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
    """One record in the canonical shape.

    ``messages`` hold the structure (see :mod:`dataaudit.io.structure`); ``response`` is the
    final assistant turn rendered as its answer plus its calls; ``tools`` the declared tools as
    one JSON text, or ``None``.
    """

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
    """Make a data-derived name fit for a one-line message: control characters escaped, long ones cut."""
    text = str(value)
    cut = text[:MAX_SHOWN_CHARS]
    printable = "".join(char if char.isprintable() else repr(char)[1:-1] for char in cut)
    return printable + ("…" if len(text) > MAX_SHOWN_CHARS else "")


def _shown(value: Any) -> str:
    """Quote a data value for a message: its ``repr``, cut to :data:`MAX_SHOWN_CHARS`."""
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        value = value[:MAX_SHOWN_CHARS]  # repr of the whole of a 20 MB string would be wasted
    try:
        text = repr(value)
    except ValueError:  # an integer over Python's digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def _text(record: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    """Read a string field; a missing required one or a non-string raises :class:`RecordError`."""
    value = record.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing field {_shown(key)}")
        return None
    if not isinstance(value, str):
        raise RecordError(f"field {_shown(key)} should be a string, got {type(value).__name__}")
    return value


def _label(record: Mapping[str, Any], key: str) -> str | None:
    """Read a label field as text: a string or a finite number; anything else raises :class:`RecordError`."""
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
    """Return the first string or number among :data:`LABEL_FIELDS`.

    For a prompt with no response, ``{prompt, label}`` is classification data and the label is
    its answer (as in :class:`~dataaudit.io.formats.TextLabel`); dropping it would audit
    unlabelled prompts. Other values (a multi-label list) stay in the raw record only.
    """
    for key in LABEL_FIELDS:
        value = record.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return _label(record, key)
    return None


def _join(*parts: str | None) -> str:
    return "\n\n".join(part for part in parts if part and part.strip())


def _content_text(content: Any, where: str) -> str:
    """Read message content as text: a string, or OpenAI's list of typed parts."""
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
    """Build an assistant message with its reasoning and ``<tool_call>`` blocks taken out of the text."""
    if reasoning is None and THINK_OPEN in content:
        reasoning, content = split_reasoning(content)
    found, content = hermes_calls(content)
    return message("assistant", content, tool_calls=[*(calls or ()), *found], reasoning=reasoning)


def _simple(prompt: str, response: str | None, *, system: str | None = None, label: str | None = None) -> CanonicalRecord:
    messages = [message("system", system)] if system else []
    messages.append(message("user", prompt))
    if response is None:
        return CanonicalRecord(messages, system, prompt, None, label)
    # A label is the answer as written; a free-text response may carry reasoning or call blocks.
    messages.append(message("assistant", response) if label is not None else assistant_turn(response))
    return CanonicalRecord(messages, system, prompt, render_answer(messages[-1]), label)


#: Roles whose turn is the assistant calling a tool, its text the call (LLaMA-Factory's ShareGPT).
_CALL_ROLES = frozenset({"function_call"})


def _parse_turns(turns: Any, field: str, *, role_key: str, content_key: str) -> list[dict[str, Any]]:
    """Parse a list of chat turns into structured messages, naming the turn that is malformed."""
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
    """Build one turn with its calls, call id, tool name and reasoning read from whichever fields hold them."""
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


def _with_label_answer(prompt: str, response: str | None, record: Mapping[str, Any]) -> CanonicalRecord:
    """Build a record of a prompt and its response; with no response, a label field is the answer.

    See :func:`_label_as_answer`. With a response, a label field stays in the raw record: a task
    category beside a completion is no class to predict (``--label-field`` makes it one).
    """
    if response is not None:
        return _simple(prompt, response)
    label = _label_as_answer(record)
    return _simple(prompt, label, label=label)
