"""Structured conversations load with their calls, results, tools and reasoning, in every dialect."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.io.convert import convert, unrepresentable
from dataaudit.io.load import from_records, load
from dataaudit.io.structure import (
    BadArguments,
    declared_tool_names,
    hermes_tools,
    normalize_tools,
    parse_arguments,
    render_answer,
    split_reasoning,
    structure_counts,
)

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}

OPENAI_TOOLS = {
    "messages": [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome","unit":"celsius"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        {"role": "tool", "tool_call_id": "call_2", "content": '{"temp_c": 24}'},
        {"role": "assistant", "content": "Paris is at 18 °C and Rome at 24 °C."},
    ],
    "tools": [WEATHER_TOOL],
}
OPENAI_LEGACY = {
    "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"role": "function", "name": "get_weather", "content": '{"temp_c": 3}'},
        {"role": "assistant", "content": "It is 3 °C in Oslo."},
    ],
    "functions": [WEATHER_TOOL["function"]],
}
OPENAI_REASONING = {
    "messages": [
        {"role": "user", "content": "What is 17 * 3?"},
        {"role": "assistant", "reasoning_content": "17 * 3 = 51.", "content": "51"},
    ],
}
SHAREGPT_TOOLS = {
    "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
        {"from": "observation", "value": '{"temp_c": 18}'},
        {"from": "gpt", "value": "It is 18 °C in Paris."},
    ],
    "system": "You are a weather assistant.",
    "tools": json.dumps([WEATHER_TOOL["function"]]),
}
HERMES = {
    "conversations": [
        {"from": "system", "value": "You are a function calling AI model. <tools> "
                                    + json.dumps(WEATHER_TOOL) + " </tools> Call a function inside <tool_call></tool_call>."},
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "gpt", "value": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'},
        {"from": "tool", "value": '<tool_response>\n{"temp_c": 18}\n</tool_response>'},
        {"from": "gpt", "value": "It is 18 °C in Paris."},
    ],
}
XLAM = {
    "id": 7,
    "query": "Where can I find live giveaways for beta access?",
    "answers": '[{"name": "live_giveaways_by_type", "arguments": {"type": "beta"}}]',
    "tools": '[{"name": "live_giveaways_by_type", "description": "Retrieve live giveaways.", '
             '"parameters": {"type": {"description": "The type of giveaways.", "type": "str", "default": "game"}}}]',
}
THINK = {"prompt": "What is 2 + 2?", "completion": "<think>\nTwo plus two is four.\n</think>\n\n4"}

ALL_TOOL_FORMATS = {"openai": OPENAI_TOOLS, "openai_legacy": OPENAI_LEGACY, "sharegpt": SHAREGPT_TOOLS,
                    "hermes": HERMES, "xlam": XLAM}


def _row(record, **options):
    dataset = from_records([record], **options)
    assert len(dataset) == 1, dataset.bad_lines
    return dataset, dataset.frame.row(0, named=True)


def _calls(row):
    return [(call["name"], parse_arguments(call["arguments"]), call["style"])
            for turn in row["messages"] for call in (turn["tool_calls"] or ())]


def test_openai_tool_calls_results_and_tools_load():
    dataset, row = _row(OPENAI_TOOLS)
    assert dataset.format == "openai"
    assert _calls(row) == [("get_weather", {"city": "Paris"}, "structured"),
                           ("get_weather", {"city": "Rome", "unit": "celsius"}, "structured")]
    assert [call["id"] for call in row["messages"][2]["tool_calls"]] == ["call_1", "call_2"]
    assert [(t["role"], t["tool_call_id"]) for t in row["messages"][3:5]] == [("tool", "call_1"), ("tool", "call_2")]
    assert declared_tool_names(row["tools"]) == {"get_weather"}
    assert json.loads(row["tools"])[0]["parameters"]["required"] == ["city"]
    assert row["response"] == "Paris is at 18 °C and Rome at 24 °C."


def test_a_turn_that_only_calls_is_its_calls_not_empty():
    record = {"messages": OPENAI_TOOLS["messages"][:3], "tools": [WEATHER_TOOL]}
    _, row = _row(record)
    assert row["response"] == 'get_weather({"city": "Paris"})\nget_weather({"city": "Rome", "unit": "celsius"})'


def test_openai_legacy_function_call_and_functions_load():
    _, row = _row(OPENAI_LEGACY)
    assert _calls(row) == [("get_weather", {"city": "Oslo"}, "function_call")]
    assert (row["messages"][2]["role"], row["messages"][2]["name"]) == ("tool", "get_weather")
    assert declared_tool_names(row["tools"]) == {"get_weather"}


def test_reasoning_content_is_kept_apart_from_the_answer():
    _, row = _row(OPENAI_REASONING)
    assert (row["messages"][1]["reasoning"], row["messages"][1]["content"], row["response"]) == ("17 * 3 = 51.", "51", "51")


def test_sharegpt_function_call_and_observation_turns_load_with_tools_as_a_json_string():
    dataset, row = _row(SHAREGPT_TOOLS)
    assert dataset.format == "sharegpt"
    assert _calls(row) == [("get_weather", {"city": "Paris"}, "structured")]
    assert [t["role"] for t in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert declared_tool_names(row["tools"]) == {"get_weather"}
    as_list = {**SHAREGPT_TOOLS, "tools": [WEATHER_TOOL["function"]]}
    assert _row(as_list)[1]["tools"] == row["tools"]


def test_sharegpt_function_call_turn_may_hold_several_calls():
    record = {"conversations": [{"from": "human", "value": "Paris and Rome?"},
                                {"from": "function_call", "value": json.dumps([
                                    {"name": "get_weather", "arguments": {"city": "Paris"}},
                                    {"name": "get_weather", "arguments": {"city": "Rome"}}])}]}
    _, row = _row(record)
    assert [args for _, args, _ in _calls(row)] == [{"city": "Paris"}, {"city": "Rome"}]


def test_hermes_tool_call_blocks_and_tools_in_the_system_prompt_load():
    _, row = _row(HERMES)
    assert _calls(row) == [("get_weather", {"city": "Paris"}, "hermes")]
    assert row["messages"][2]["content"] == ""  # the block became the call
    assert declared_tool_names(row["tools"]) == {"get_weather"}
    assert "<tools>" in row["system"]  # the prompt is kept as the trainer sees it


def test_hermes_tools_may_be_one_json_object_per_line_or_a_list():
    one_per_line = "<tools>\n" + json.dumps(WEATHER_TOOL) + "\n" + json.dumps({"name": "x"}) + "\n</tools>"
    as_list = "<tools>" + json.dumps([WEATHER_TOOL, {"name": "x"}]) + "</tools>"
    assert hermes_tools(one_per_line) == hermes_tools(as_list) == [WEATHER_TOOL, {"name": "x"}]
    assert hermes_tools("no tools here") is None


def test_xlam_query_tools_and_answers_load_with_a_json_schema():
    dataset, row = _row(XLAM)
    assert dataset.format == "xlam"
    assert _calls(row) == [("live_giveaways_by_type", {"type": "beta"}, "structured")]
    parameters = json.loads(row["tools"])[0]["parameters"]
    assert parameters == {"type": "object", "properties": {
        "type": {"description": "The type of giveaways.", "type": "string", "default": "game"}}}  # a default: optional


def test_xlam_optional_types_are_not_required():
    tools = normalize_tools([{"name": "f", "parameters": {"a": {"type": "int"}, "b": {"type": "List[str], optional"}}}])
    assert json.loads(tools)[0]["parameters"] == {"type": "object", "properties": {"a": {"type": "integer"},
                                                                                   "b": {"type": "array"}},
                                                  "required": ["a"]}


def test_think_blocks_are_split_from_the_answer():
    _, row = _row(THINK)
    assert (row["messages"][-1]["reasoning"], row["messages"][-1]["content"], row["response"]) == \
        ("Two plus two is four.", "4", "4")
    assert split_reasoning("<think></think>answer") == ("", "answer")
    assert split_reasoning("<think>never closed") == (None, "<think>never closed")  # left for the reasoning check
    assert split_reasoning("stray </think> tag") == (None, "stray </think> tag")


def test_a_label_is_never_read_as_reasoning_or_calls():
    _, row = _row({"text": "hi", "label": "<think>x</think>greeting"})
    assert row["response"] == row["label"] == "<think>x</think>greeting"


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", "not json"])
def test_arguments_that_are_not_a_json_object_are_kept_raw(arguments):
    record = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]}]}
    _, row = _row(record)
    assert row["messages"][1]["tool_calls"][0]["arguments"] == arguments
    with pytest.raises(BadArguments):
        parse_arguments(arguments)
    assert row["response"] == f"get_weather({arguments})"


@pytest.mark.parametrize("tools", ["not json", {"name": "f"}, 3, [1, "x"]])
def test_a_tools_value_that_is_not_a_list_of_tools_is_kept_for_the_check(tools):
    _, row = _row({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": tools})
    assert row["tools"] is not None and declared_tool_names(row["tools"]) == set()


def test_inspect_counts_the_structure():
    dataset = from_records([OPENAI_TOOLS, OPENAI_REASONING, {"messages": [{"role": "user", "content": "q"}]}])
    counts = structure_counts(dataset.frame)
    assert counts == {"rows_with_tools": 1, "rows_with_calls": 1, "calls": 2, "tool_results": 2,
                      "rows_with_reasoning": 1, "calls_structured": 2}


# --- conversions ----------------------------------------------------------------------------

def _loaded_calls(record):
    _, row = _row(record)
    return [(name, args) for name, args, _ in _calls(row)], declared_tool_names(row["tools"]), row


@pytest.mark.parametrize("name", sorted(ALL_TOOL_FORMATS))
@pytest.mark.parametrize("to", ["openai", "sharegpt"])
def test_every_tool_format_converts_without_losing_a_call_result_or_tool(name, to):
    calls, tools, row = _loaded_calls(ALL_TOOL_FORMATS[name])
    converted = convert(row, to)
    again_calls, again_tools, again = _loaded_calls(converted)
    assert (again_calls, again_tools) == (calls, tools)
    assert [t["role"] for t in again["messages"]] == [t["role"] for t in row["messages"]]
    assert [t["content"] for t in again["messages"] if t["role"] == "tool"] == \
        [t["content"] for t in row["messages"] if t["role"] == "tool"]
    assert unrepresentable(row, "alpaca") is not None and unrepresentable(row, to) is None


def test_plain_chat_converts_exactly_as_before():
    _, row = _row({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    assert convert(row, "openai") == {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert convert(row, "sharegpt") == {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}


def test_reasoning_is_written_as_a_think_block_and_read_back():
    _, row = _row(OPENAI_REASONING)
    for to in ("openai", "sharegpt", "alpaca"):
        _, again = _row(convert(row, to))
        assert (again["messages"][-1]["reasoning"], again["response"]) == ("17 * 3 = 51.", "51")


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
_json_value = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | _text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                           max_leaves=6)
_call = st.builds(lambda name, args: {"name": name, "arguments": args},
                  st.from_regex(r"[a-z][a-z_.]{0,10}", fullmatch=True), st.dictionaries(_text, _json_value, max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=_text.filter(lambda t: "<" not in t), turns=st.lists(st.lists(_call, min_size=1, max_size=3), min_size=1, max_size=3),
       text=_text.filter(lambda t: "<" not in t), to=st.sampled_from(["openai", "sharegpt"]))
def test_round_trips_keep_every_call(prompt, turns, text, to):
    messages = [{"role": "user", "content": prompt}]
    for index, calls in enumerate(turns):
        messages.append({"role": "assistant", "content": text if index == 0 else "", "tool_calls": [
            {"id": f"c{index}_{n}", "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}} for n, call in enumerate(calls)]})
        messages += [{"role": "tool", "tool_call_id": f"c{index}_{n}", "content": "ok"} for n in range(len(calls))]
    messages.append({"role": "assistant", "content": "done"})
    calls, _, row = _loaded_calls({"messages": messages})
    expected = [(call["name"], call["arguments"]) for group in turns for call in group]
    assert calls == expected
    again, _, _ = _loaded_calls(convert(row, to))
    assert again == expected


# --- export ---------------------------------------------------------------------------------

def result_for(dataset, flagged_rows=()):
    """An audit result flagging ``flagged_rows`` (duplicate, error): export reads nothing else."""
    import polars as pl

    from dataaudit.checks.base import FINDING_SCHEMA
    from dataaudit.result import AuditResult

    findings = pl.DataFrame([{"row": row, "check": "duplicate", "kind": "exact", "score": 0.0, "severity": "error",
                              "cluster": 0, "group": None, "reason": "r", "suggestion": None, "suggested_value": None}
                             for row in flagged_rows], schema=FINDING_SCHEMA)
    summary = {"dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint()}}
    return AuditResult(rows=pl.DataFrame({"row": dataset.frame.get_column("row")}), findings=findings,
                       clusters=pl.DataFrame(), summary=summary)

def _write(path, records):
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(ALL_TOOL_FORMATS))
def test_export_is_a_lossless_partition_on_every_tool_format(tmp_path, name):
    from dataaudit.export import export_clean

    record = ALL_TOOL_FORMATS[name]
    broken = json.loads(json.dumps(record))
    source = _write(tmp_path / "in.jsonl", [record, broken, record])
    dataset = load(source)
    result = result_for(dataset, flagged_rows=[1])
    export_clean(dataset, result, clean=tmp_path / "clean.jsonl", rejected=tmp_path / "rejected.jsonl")
    lines = source.read_bytes().splitlines(keepends=True)
    assert (tmp_path / "clean.jsonl").read_bytes() == lines[0] + lines[2]  # kept records byte for byte
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [entry["line"] for entry in rejected] == [2]


def test_export_to_alpaca_refuses_tool_rows_and_writes_nothing(tmp_path):
    from dataaudit.errors import UsageError
    from dataaudit.export import export_clean

    plain = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    dataset = load(_write(tmp_path / "in.jsonl", [plain, OPENAI_TOOLS, plain]))
    with pytest.raises(UsageError, match=r"--to alpaca cannot hold 1 kept row.*line 2: it declares tools"):
        export_clean(dataset, result_for(dataset), clean=tmp_path / "o.jsonl", rejected=tmp_path / "r.jsonl", to="alpaca")
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "r.jsonl").exists()
    # Dropping the row first makes the export possible; the dropped row is in the rejected file.
    export_clean(dataset, result_for(dataset, flagged_rows=[1]), clean=tmp_path / "o.jsonl",
                 rejected=tmp_path / "r.jsonl", to="alpaca")
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("container", ["jsonl", "parquet"])
def test_export_to_openai_carries_the_calls_into_each_container(tmp_path, container):
    import polars as pl

    from dataaudit.export import export_clean

    plain = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    (tmp_path / "in").mkdir()
    if container == "jsonl":
        _write(tmp_path / "in" / "data.jsonl", [plain, OPENAI_TOOLS])
    else:  # nested turns, and the tools as JSON text, as tables on the hub keep them
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([{"messages": plain["messages"], "tools": None},
                                      {"messages": OPENAI_TOOLS["messages"], "tools": json.dumps(OPENAI_TOOLS["tools"])}])
        pq.write_table(table, tmp_path / "in" / "data.parquet")
    dataset = load(tmp_path / "in")
    export_clean(dataset, result_for(dataset), out_dir=tmp_path / "out", rejected=tmp_path / "r.jsonl", to="openai")
    if container == "jsonl":
        written = [json.loads(line) for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
        tools = written[1]["tools"]
    else:
        written = pl.read_parquet(tmp_path / "out" / "data.parquet").to_dicts()
        tools = json.loads(written[1]["tools"])
    assert tools[0]["function"]["name"] == "get_weather"
    assert [call["function"]["arguments"] for call in written[1]["messages"][2]["tool_calls"]] == \
        ['{"city": "Paris"}', '{"city":"Rome","unit":"celsius"}']
    assert written[0]["messages"][1]["content"] == "a"


def test_render_answer_is_one_reading_whatever_the_dialect():
    openai_row = _row({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "x", "type": "function", "function": {"name": "f", "arguments": '{"b": 1, "a": 2}'}}]}]})[1]
    hermes_row = _row({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content":
                       '<tool_call>{"name": "f", "arguments": {"a": 2, "b": 1}}</tool_call>'}]})[1]
    assert openai_row["response"] == hermes_row["response"] == 'f({"a": 2, "b": 1})'
    assert render_answer({"content": "Sure.", "tool_calls": [{"name": "g", "arguments": "{}"}]}) == "Sure.\ng({})"
