"""``export --to``: canonical rows written as another format, structure included.

``openai`` and ``sharegpt`` carry tool calls, tool results, declared tools and reasoning
across (reasoning as a leading ``<think>`` block, the form every chat template trains on);
``alpaca`` has no place for them, nor for earlier turns, so :func:`unrepresentable` names the
rows it would have to cut and the export refuses them instead of losing them.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from dataaudit.io.structure import BadArguments, parse_arguments, with_reasoning

#: Formats ``export --to`` converts kept records into.
TARGET_FORMATS = ("openai", "alpaca", "sharegpt")

_SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


def _tools_value(tools: str | None) -> Any:
    return None if tools is None else json.loads(tools)


def to_openai(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI chat: ``tool_calls`` with ``function.arguments`` as the raw JSON text, ``tool``
    turns with their ``tool_call_id``, and ``tools`` as ``{type: function, function: …}``.
    A plain conversation is written exactly as before (``{role, content}`` only)."""
    messages = []
    for turn in canonical["messages"]:
        out: dict[str, Any] = {"role": turn["role"], "content": with_reasoning(turn)}
        calls = turn.get("tool_calls") or ()
        if calls:
            out["tool_calls"] = [{"id": call.get("id") or f"call_{index}", "type": "function",
                                  "function": {"name": call.get("name"), "arguments": call.get("arguments")}}
                                 for index, call in enumerate(calls)]
        for key in ("tool_call_id", "name"):
            if turn.get(key) is not None:
                out[key] = turn[key]
        messages.append(out)
    record: dict[str, Any] = {"messages": messages}
    tools = _tools_value(canonical.get("tools"))
    if tools is not None:
        record["tools"] = [{"type": "function", "function": entry} if isinstance(entry, dict) else entry
                           for entry in tools] if isinstance(tools, list) else tools
    return record


def _call_object(call: Mapping[str, Any]) -> dict[str, Any]:
    try:
        arguments: Any = parse_arguments(call.get("arguments"))
    except BadArguments:
        arguments = call.get("arguments")
    return {"name": call.get("name"), "arguments": arguments}


def to_sharegpt(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """ShareGPT as LLaMA-Factory reads it: ``function_call`` turns holding the calls as JSON,
    ``observation`` turns for results, and ``tools`` as a JSON string. An assistant turn with
    both text and calls keeps its text, the calls written after it as ``<tool_call>`` blocks."""
    conversations = []
    for turn in canonical["messages"]:
        calls = turn.get("tool_calls") or ()
        text = with_reasoning(turn)
        if calls and not text.strip():
            objects = [_call_object(call) for call in calls]
            value = objects[0] if len(objects) == 1 else objects
            conversations.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
            continue
        if calls:
            blocks = "\n".join(
                "<tool_call>\n" + json.dumps(_call_object(call), ensure_ascii=False) + "\n</tool_call>" for call in calls)
            text = f"{text}\n{blocks}"
        conversations.append({"from": _SHAREGPT_ROLES.get(turn["role"], turn["role"]), "value": text})
    record: dict[str, Any] = {"conversations": conversations}
    if canonical.get("tools") is not None:
        record["tools"] = json.dumps(_tools_value(canonical["tools"]), ensure_ascii=False)
    return record


def to_alpaca(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """Alpaca: one instruction and its output (callers refuse rows :func:`unrepresentable` names)."""
    messages = canonical["messages"]
    final = messages[-1] if messages and messages[-1]["role"] == "assistant" else None
    output = with_reasoning(final) if final is not None else (canonical["response"] or "")
    record = {"instruction": canonical["prompt"], "input": "", "output": output}
    if canonical["system"]:
        record["system"] = canonical["system"]
    return record


CONVERTERS = {"openai": to_openai, "sharegpt": to_sharegpt, "alpaca": to_alpaca}


def convert(canonical: Mapping[str, Any], to: str) -> dict[str, Any]:
    return CONVERTERS[to](canonical)


def unrepresentable(canonical: Mapping[str, Any], to: str) -> str | None:
    """Why ``to`` cannot hold this row without losing part of it, or ``None`` when it can."""
    if to != "alpaca":
        return None
    messages = canonical["messages"]
    if canonical.get("tools") is not None:
        return "it declares tools"
    if any(turn.get("tool_calls") for turn in messages):
        return "it holds tool calls"
    if any(turn["role"] not in ("system", "user", "assistant") for turn in messages):
        return "it holds tool results"
    if sum(turn["role"] == "user" for turn in messages) > 1 or sum(turn["role"] == "assistant" for turn in messages) > 1:
        return "it has more than one exchange"
    return None


def template_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages in the OpenAI / Hugging Face form chat templates read: calls as
    ``{id, type: function, function: {name, arguments}}`` with parsed arguments (raw text where
    they are not a JSON object), ``tool_calls`` only on turns that have calls (several templates
    test ``'tool_calls' in message``), ``tool_call_id`` and ``name`` on tool results, and a
    turn's reasoning back in its text as a leading ``<think>`` block, where trainers see it."""
    out = []
    for message in messages:
        turn: dict[str, Any] = {"role": message["role"], "content": with_reasoning(message)}
        calls = message.get("tool_calls")
        if calls:
            turn["tool_calls"] = [
                {"id": call.get("id") or f"call_{index}", "type": "function",
                 "function": {"name": call.get("name") or "", "arguments": _arguments(call.get("arguments"))}}
                for index, call in enumerate(calls)
            ]
        for key in ("tool_call_id", "name"):
            if message.get(key):
                turn[key] = message[key]
        out.append(turn)
    return out


def _arguments(raw: str | None) -> Any:
    try:
        return parse_arguments(raw)
    except BadArguments:
        return raw or ""
