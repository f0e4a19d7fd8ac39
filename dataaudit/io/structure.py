"""Structured conversations: tool calls, tool results, declared tools and reasoning traces.

Today's SFT data is not plain text: assistant turns carry tool calls (a name plus JSON
arguments), tool turns answer a call id, rows declare their tools as JSON Schemas, and
reasoning models write a trace before the answer. The format adapters read each dialect
(OpenAI ``tool_calls``/``function_call``, ShareGPT's ``function_call``/``observation``
turns, Hermes ``<tool_call>`` blocks, xLAM's JSON strings, ``<think>`` blocks and
``reasoning_content``) into one canonical shape, so every check sees the structure the
trainer sees instead of an "empty" turn.

A canonical message is ``{role, content, tool_calls, tool_call_id, name, reasoning}``:
``content`` is the answer text (reasoning and parsed call blocks taken out), ``tool_calls``
a list of :data:`ToolCall` dicts or ``None``, ``reasoning`` the trace or ``None`` (``""`` for
an empty ``<think></think>``). The row's declared tools are one JSON text (see
:func:`normalize_tools`). Malformed input is never an error here: a call whose arguments are
not JSON keeps its raw string, a ``tools`` value that is not a list is kept as written, and
the ``tools`` check reports both, so the row is audited rather than lost.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

#: One tool call: ``arguments`` is the raw JSON text as written (parse it with
#: :func:`parse_arguments`); ``style`` says how the data wrote it (:data:`CALL_STYLES`).
TOOL_CALL_FIELDS = ("id", "name", "arguments", "style")
#: A canonical message; every field but ``role``, ``content`` and ``tool_calls`` is text.
MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id", "name", "reasoning")

#: How a call was written: a structured field (``tool_calls``, ShareGPT ``function_call``
#: turns, xLAM ``answers``), OpenAI's legacy ``function_call``, or a ``<tool_call>`` block in text.
CALL_STYLES = ("structured", "function_call", "hermes")



def tool_call_dtype():
    """polars type of one call (a function: polars is imported only when a frame is built)."""
    import polars as pl

    return pl.Struct({name: pl.String for name in TOOL_CALL_FIELDS})


def messages_dtype():
    """polars type of the ``messages`` column."""
    import polars as pl

    fields = {name: pl.String for name in MESSAGE_FIELDS}
    fields["tool_calls"] = pl.List(tool_call_dtype())
    return pl.List(pl.Struct(fields))


THINK_OPEN = "<think>"
_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)
_HERMES_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_HERMES_TOOLS = re.compile(r"<tools>(.*?)</tools>", re.DOTALL)


def message(role: str, content: str = "", *, tool_calls: list[dict] | None = None, tool_call_id: str | None = None,
            name: str | None = None, reasoning: str | None = None) -> dict[str, Any]:
    """A canonical message with every field present (polars needs one shape)."""
    return {"role": role, "content": content, "tool_calls": tool_calls or None, "tool_call_id": tool_call_id,
            "name": name, "reasoning": reasoning}


def tool_call(name: Any, arguments: Any, *, id: Any = None, style: str = "structured") -> dict[str, Any]:
    """A canonical call. ``arguments`` may be a parsed value (written back as JSON) or the raw text."""
    return {"id": None if id is None else str(id), "name": None if name is None else str(name),
            "arguments": arguments_text(arguments), "style": style}


def arguments_text(arguments: Any) -> str:
    """The raw arguments text: a string stays as written, anything else is written as JSON."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return "{}"
    try:
        return json.dumps(arguments, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(arguments)


class BadArguments(ValueError):
    """A call's arguments are not a JSON object."""


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """The arguments as a dict; :class:`BadArguments` says why when they are not a JSON object."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as error:
        raise BadArguments(f"not valid JSON ({getattr(error, 'msg', type(error).__name__)})") from None
    if not isinstance(value, dict):
        raise BadArguments(f"a JSON {type(value).__name__}, not an object")
    return value


def canonical_arguments(raw: str | None) -> str:
    """Arguments written one way (sorted keys, no spacing choices), so equal calls compare equal;
    arguments that are not JSON are kept as written."""
    try:
        return json.dumps(parse_arguments(raw), sort_keys=True, ensure_ascii=False)
    except BadArguments:
        return raw or ""


def render_calls(calls: list[Mapping[str, Any]] | None) -> str:
    """Calls as one line each, ``name({...})``: what the duplicate, conflict and embedding steps compare."""
    return "\n".join(f"{call.get('name') or ''}({canonical_arguments(call.get('arguments'))})" for call in calls or ())


def render_answer(turn: Mapping[str, Any]) -> str:
    """One canonical rendering of an assistant turn: its answer text, then its calls.

    Two rows that make the same call read the same whichever dialect wrote it, and a turn that
    only calls a tool is not empty."""
    content = turn.get("content") or ""
    calls = render_calls(turn.get("tool_calls"))
    if not calls:
        return content
    return f"{content}\n{calls}" if content.strip() else calls


def turn_text(turn: Mapping[str, Any]) -> str:
    """Everything a turn says, as text: its reasoning, its answer and its calls. Two turns that
    differ only in their calls or their reasoning are different examples."""
    parts = [turn.get("reasoning"), turn.get("content"), render_calls(turn.get("tool_calls"))]
    return "\n".join(part for part in parts if part)


def final_calls(frame) -> list[str | None]:
    """Each row's final assistant turn's calls, rendered canonically (:func:`render_calls`), or
    ``None`` when it makes none: the "answer" of a tool-calling row. Rows without calls cost a
    null test in polars; only calling rows are rendered in Python."""
    import polars as pl

    last = pl.col("messages").list.last()
    calls = frame.select(pl.when(last.struct.field("role") == "assistant").then(last.struct.field("tool_calls"))
                         .alias("calls")).get_column("calls")
    if calls.null_count() == calls.len():
        return [None] * calls.len()
    return [render_calls(turn) if turn else None for turn in calls.to_list()]


def with_reasoning(turn: Mapping[str, Any]) -> str:
    """A turn's text with its reasoning written before it as a ``<think>`` block (how SFT data,
    chat templates and ``export --to`` write it), or the text alone when it has none."""
    content = turn.get("content") or ""
    reasoning = turn.get("reasoning")
    if reasoning is None:
        return content
    return f"<think>\n{reasoning}\n</think>\n\n{content}" if content else f"<think>\n{reasoning}\n</think>"


def split_reasoning(content: str) -> tuple[str | None, str]:
    """``(reasoning, answer)`` of a leading ``<think>…</think>`` block; ``(None, content)`` when
    there is none. An unclosed or stray tag is left in the text for the reasoning check."""
    if THINK_OPEN not in content:
        return None, content
    match = _THINK.match(content)
    if match is None:
        return None, content
    return match.group(1).strip(), content[match.end():]


def hermes_calls(content: str) -> tuple[list[dict], str]:
    """``<tool_call>{"name", "arguments"}</tool_call>`` blocks (Hermes, Qwen) as calls, and the
    text left around them. A block that is not a JSON object keeps its text as raw arguments."""
    if "<tool_call>" not in content:
        return [], content
    calls = []
    for block in _HERMES_CALL.findall(content):
        try:
            value = json.loads(block)
        except (json.JSONDecodeError, RecursionError):
            calls.append(tool_call(None, block, style="hermes"))
            continue
        if isinstance(value, dict):
            calls.append(tool_call(value.get("name"), value.get("arguments", value.get("parameters")), style="hermes",
                                   id=value.get("id")))
        else:
            calls.append(tool_call(None, block, style="hermes"))
    rest = _HERMES_CALL.sub("", content).strip() if calls else content
    return calls, rest


def call_from_object(value: Any, *, style: str = "structured") -> dict:
    """A call from ``{name, arguments}`` or OpenAI's ``{id, type, function: {name, arguments}}``."""
    if not isinstance(value, Mapping):
        return tool_call(None, arguments_text(value), style=style)
    function = value.get("function")
    if isinstance(function, Mapping):
        return tool_call(function.get("name"), function.get("arguments"), id=value.get("id"), style=style)
    arguments = value.get("arguments", value.get("parameters"))
    return tool_call(value.get("name"), arguments, id=value.get("id"), style=style)


def calls_from_value(value: Any, *, style: str = "structured") -> list[dict]:
    """Calls from a list of call objects, one object, or a JSON string of either."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return [tool_call(None, value, style=style)]
    if isinstance(value, list):
        return [call_from_object(item, style=style) for item in value]
    return [call_from_object(value, style=style)]


# --- declared tools -------------------------------------------------------------------------

#: xLAM / APIGen's Python-style type names, as JSON Schema types.
_XLAM_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
               "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array",
               "dict": "object", "object": "object", "tuple": "array", "set": "array"}


def _tool_entry(value: Any) -> Any:
    """One declared tool as ``{name, description, parameters}``; anything else is kept as given."""
    if not isinstance(value, Mapping):
        return value
    function = value.get("function") if value.get("type") == "function" else None
    spec = function if isinstance(function, Mapping) else value
    entry = {key: spec[key] for key in ("name", "description", "parameters") if key in spec}
    for key, item in spec.items():
        if key not in entry and key not in ("type",):
            entry[key] = item
    parameters = entry.get("parameters")
    if _is_xlam_parameters(parameters):
        entry["parameters"] = _xlam_schema(parameters)
    return entry


def _is_xlam_parameters(parameters: Any) -> bool:
    """xLAM lists each argument's spec directly (``{city: {type: "str"}}``); a JSON Schema has a
    string ``type`` or ``properties`` at the top (an argument may itself be called ``type``)."""
    if not isinstance(parameters, Mapping) or not parameters:
        return False
    if isinstance(parameters.get("type"), str) or "properties" in parameters or "$schema" in parameters:
        return False
    return all(isinstance(spec, Mapping) for spec in parameters.values())


def _xlam_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """xLAM's ``{arg: {type: "str, optional", description, default}}`` as a JSON Schema object."""
    properties: dict[str, Any] = {}
    required = []
    for name, spec in parameters.items():
        if not isinstance(spec, Mapping):
            properties[name] = {}
            continue
        prop = {key: item for key, item in spec.items() if key not in ("type", "default")}
        raw_type = spec.get("type")
        optional = "default" in spec
        if isinstance(raw_type, str):
            base = raw_type.split(",")[0].strip()
            optional = optional or "optional" in raw_type.lower()
            simple = _XLAM_TYPES.get(base.split("[")[0].strip().lower())
            if simple is not None:
                prop["type"] = simple
        if "default" in spec:
            prop["default"] = spec["default"]
        properties[name] = prop
        if not optional:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def normalize_tools(value: Any) -> str | None:
    """The declared tools as one JSON text: a list of ``{name, description, parameters}``.

    Accepts OpenAI's ``[{type: function, function: {...}}]``, legacy ``functions``, a JSON
    string of either (ShareGPT, xLAM) and xLAM's parameter dicts. A value that is not a list
    (or a string that is not JSON) is kept as written, so the ``tools`` check can name it."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        value = [_tool_entry(item) for item in value]
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def hermes_tools(system: str | None) -> list[Any] | None:
    """Tools listed inside ``<tools>…</tools>`` in a system prompt (Hermes, Qwen): a JSON list
    or one JSON object after another."""
    if not system or "<tools>" not in system:
        return None
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for block in _HERMES_TOOLS.findall(system):
        text, position = block.strip(), 0
        while position < len(text):
            while position < len(text) and text[position] in " \t\r\n,":
                position += 1
            if position >= len(text):
                break
            try:
                value, position = decoder.raw_decode(text, position)
            except (json.JSONDecodeError, RecursionError):
                return found or None
            found.extend(value if isinstance(value, list) else [value])
    return found or None


def declared_tool_names(tools: str | None) -> set[str]:
    """Names of the tools a row declares (its :func:`normalize_tools` text)."""
    if tools is None:
        return set()
    try:
        value = json.loads(tools)
    except (json.JSONDecodeError, RecursionError):
        return set()
    if not isinstance(value, list):
        return set()
    return {entry["name"] for entry in value if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)}


#: Call styles as the format check names them: the structured field, OpenAI's legacy field,
#: tags in the text, or a bare JSON object written as the answer text.
CALL_STYLE_NAMES = {"structured": "tool_calls", "function_call": "function_call", "hermes": "tags", "json_text": "json_text"}
_JSON_CALL_TEXT = r'^\s*\[?\s*\{\s*"(?:name|function)"\s*:[\s\S]*"(?:arguments|parameters)"\s*:'


def call_style_expr():
    """polars expression: how each row's final assistant turn calls a tool (a value of
    :data:`CALL_STYLE_NAMES`), or null when it answers in text."""
    import polars as pl

    last = pl.col("messages").list.last()
    calls = last.struct.field("tool_calls")
    is_assistant = last.struct.field("role") == "assistant"
    style = calls.list.first().struct.field("style").replace_strict(CALL_STYLE_NAMES, default=None, return_dtype=pl.String)
    return (pl.when(is_assistant & (calls.list.len().fill_null(0) > 0)).then(style)
            .when(is_assistant & last.struct.field("content").fill_null("").str.contains(_JSON_CALL_TEXT))
            .then(pl.lit("json_text")).otherwise(pl.lit(None, dtype=pl.String)).alias("call_style"))


def structure_counts(frame) -> dict[str, int]:
    """How much structure a canonical frame holds: rows declaring tools, rows and turns with
    calls, calls by style, tool results and rows with reasoning (what ``inspect`` shows)."""
    import polars as pl

    if frame.height == 0:
        return {"rows_with_tools": 0, "rows_with_calls": 0, "calls": 0, "tool_results": 0, "rows_with_reasoning": 0}
    turns = frame.select("row", "messages").explode("messages").unnest("messages")
    calls_per_turn = pl.col("tool_calls").list.len().fill_null(0)
    counts = turns.select(
        (calls_per_turn > 0).any().over("row").alias("called"),
        pl.col("reasoning").is_not_null().any().over("row").alias("reasons"),
        "row", calls_per_turn.alias("calls"), (pl.col("role") == "tool").alias("result"),
    )
    per_row = counts.group_by("row").agg(pl.col("called").first(), pl.col("reasons").first())
    styles = (turns.select(pl.col("tool_calls").explode().struct.field("style")).drop_nulls()
              .get_column("style").value_counts(sort=True))
    return {
        "rows_with_tools": int(frame.get_column("tools").is_not_null().sum()) if "tools" in frame.columns else 0,
        "rows_with_calls": int(per_row.get_column("called").sum()),
        "calls": int(counts.get_column("calls").sum()),
        "tool_results": int(counts.get_column("result").sum()),
        "rows_with_reasoning": int(per_row.get_column("reasons").sum()),
        **{f"calls_{style}": int(count) for style, count in styles.iter_rows()},
    }
