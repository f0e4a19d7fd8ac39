"""The tools check: every fault kind, on real-shaped records of each tool-calling dialect."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.tools import KINDS, ToolsCheck
from dataaudit.io.load import from_records
from tests.conftest import make_context

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "days": {"type": "integer", "description": "Forecast days", "default": 1},
            },
            "required": ["location", "unit"],
        },
    },
}
STRICT = {
    "type": "function",
    "function": {
        "name": "book_flight",
        "description": "Book a flight.",
        "parameters": {
            "type": "object",
            "properties": {"origin": {"type": "string"}, "destination": {"type": "string"}},
            "required": ["origin", "destination"],
            "additionalProperties": False,
        },
    },
}
ASK = {"role": "user", "content": "What's the weather like in Boston today?"}


def call(name="get_current_weather", arguments='{"location": "Boston, MA", "unit": "fahrenheit"}', id="call_1"):
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def calling(*calls, content=None):
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def result(id="call_1", content='{"temperature": 72, "unit": "fahrenheit"}'):
    return {"role": "tool", "tool_call_id": id, "content": content}


def chat(*turns, tools=(WEATHER,)):
    record = {"messages": [ASK, *turns]}
    if tools is not None:
        record["tools"] = list(tools) if isinstance(tools, tuple) else tools
    return record


def run(records, **params):
    dataset = from_records(records)
    assert len(dataset) == len(records) and not dataset.bad_lines
    return ToolsCheck(**params).run(make_context(dataset))


def kinds_by_row(result):
    found = result.findings.group_by("row").agg("kind")
    return {row: set(kinds) for row, kinds in found.iter_rows()}


#: (OpenAI record, the kinds it must raise, the suggested value of its first finding or None).
CASES = [
    (chat(calling(call()), result(), {"role": "assistant", "content": "It is 72°F in Boston."}), set(), None),
    (chat(calling(call(arguments='{"location": "Boston, MA", "unit": '))), {"bad_arguments"}, None),
    (chat(calling(call(arguments="{'location': 'Boston, MA', 'unit': 'celsius'}"))), {"bad_arguments"},
     '{"location": "Boston, MA", "unit": "celsius"}'),
    (chat(calling(call(arguments='["Boston"]'))), {"bad_arguments"}, None),
    (chat(calling(call(name="get_current_wether"))), {"undeclared_tool"}, "get_current_weather"),
    (chat(calling(call(arguments='{"location": "Boston, MA", "unit": "celsius", "days": "5"}'))), {"wrong_type"}, "5"),
    (chat(calling(call(arguments='{"location": "Boston, MA", "unit": "Celsius"}'))), {"bad_enum"}, '"celsius"'),
    (chat(calling(call(arguments='{"location": "Boston, MA"}'))), {"missing_argument"}, '"celsius"'),
    (chat(calling(call(arguments='{"location": "Boston, MA", "unit": null}'))), {"wrong_type"}, None),
    (chat(calling(call(name="book_flight", arguments='{"origin": "BOS", "destination": "SFO", "destinaton": "SFO"}')),
          tools=(STRICT,)), {"unknown_argument"}, None),
    (chat(calling(call(name="book_flight", arguments='{"origin": "BOS", "destinaton": "SFO"}')), tools=(STRICT,)),
     {"unknown_argument", "missing_argument"}, None),
    (chat(calling(call(arguments='{"location": "Boston, MA", "unit": "celsius", "city": "Boston"}'))),
     {"undeclared_argument"}, None),
    (chat(calling(call()), result(id="call_9")), {"orphan_tool_result"}, "call_1"),
    (chat({"role": "assistant", "content": "Let me check."}, result()), {"orphan_tool_result"}, None),
    (chat(calling(call(), call(arguments='{"location": "Paris", "unit": "celsius"}'))), {"duplicate_call_id"}, None),
    (chat(calling(call()), tools="get_current_weather"), {"bad_tools"}, None),
    (chat(calling(call()), tools={"name": "get_current_weather"}), {"bad_tools"}, None),
    (chat(calling(call(arguments='{"location": "Boston", "unit": "celsius"}')),
          tools=({"type": "function", "function": {"name": "get_current_weather",
                                                   "parameters": {"type": "object", "properties": {"unit": {"type": "float"}}}}},)),
     {"invalid_schema"}, None),
    (chat(calling({"id": "call_1", "type": "function", "function": {"arguments": "{}"}})), {"missing_tool_name"}, None),
    (chat(calling(call(arguments='{"location": "Boston", "unit": "celsius", "days": -3}')),
          tools=({"name": "get_current_weather", "parameters": {
              "type": "object", "properties": {"days": {"type": "integer", "minimum": 1}}}},)),
     {"schema_violation", "undeclared_argument"}, None),
]


def test_every_fault_kind_is_flagged_and_clean_rows_are_not():
    result = run([record for record, _, _ in CASES])
    by_row = kinds_by_row(result)
    for row, (record, expected, _) in enumerate(CASES):
        assert by_row.get(row, set()) == expected, (row, record)
    assert {kind for _, kinds, _ in CASES for kind in kinds} == set(KINDS)
    first = result.findings.unique("row", keep="first", maintain_order=True)
    suggested = dict(first.select("row", "suggested_value").iter_rows())
    for row, (_, expected, value) in enumerate(CASES):
        if expected and value is not None:
            assert suggested[row] == value, (row, suggested[row])
    assert result.rows.get_column("is_tools_issue").to_list() == [bool(expected) for _, expected, _ in CASES]
    assert set(result.findings.get_column("severity")) <= {"error", "warning"}
    assert result.findings.filter(result.findings["reason"].str.contains("null is a null")).height == 1  # not also bad_enum


def test_reasons_name_the_call_the_argument_path_and_the_rule():
    schema = {"type": "object", "properties": {"stops": {"type": "array", "items": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}
    tools = ({"name": "plan_route", "parameters": schema},)
    result = run([chat(calling(call(name="plan_route", arguments='{"stops": [{"city": "Boston"}, {"city": 7}]}')),
                       tools=tools)])
    (reason,) = result.findings.get_column("reason").to_list()
    assert "turn 1, call 0 (plan_route)" in reason and "stops[1].city" in reason and "[rule: type]" in reason
    assert result.findings.get_column("suggested_value").to_list() == ['"7"']


def test_schema_dialect_follows_dollar_schema():
    """Draft-07's tuple ``items`` is valid there and invalid in 2020-12 (the default)."""
    tuple_schema = {"type": "object", "properties": {"point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]}}}
    args = '{"point": [1, "two"]}'
    draft7 = {"name": "plot", "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", **tuple_schema}}
    default = {"name": "plot", "parameters": tuple_schema}
    result = run([chat(calling(call(name="plot", arguments=args)), tools=(draft7,)),
                  chat(calling(call(name="plot", arguments=args)), tools=(default,))])
    assert kinds_by_row(result) == {0: {"wrong_type"}, 1: {"invalid_schema"}}


def test_a_remote_ref_is_never_fetched_and_local_refs_resolve():
    remote = {"name": "plot", "parameters": {"type": "object", "properties": {
        "point": {"$ref": "https://example.com/schemas/point.json"}}}}
    local = {"name": "plot", "parameters": {"type": "object", "$defs": {"n": {"type": "number"}},
                                            "properties": {"point": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}}
    args = '{"point": [1, "two"]}'
    result = run([chat(calling(call(name="plot", arguments=args)), tools=(remote,)),
                  chat(calling(call(name="plot", arguments=args)), tools=(local,))])
    assert kinds_by_row(result) == {0: {"invalid_schema"}, 1: {"wrong_type"}}
    assert "cannot be applied" in result.findings.get_column("reason")[0]


def test_sharegpt_function_call_and_observation_turns():
    tools = json.dumps([{"name": "get_current_weather", "description": "Weather", "parameters": WEATHER["function"]["parameters"]}])

    def record(arguments):
        return {"conversations": [
            {"from": "human", "value": "Weather in Boston?"},
            {"from": "function_call", "value": json.dumps({"name": "get_current_weather", "arguments": arguments})},
            {"from": "observation", "value": '{"temperature": 72}'},
            {"from": "gpt", "value": "It is 72°F."},
        ], "tools": tools}

    result = run([record({"location": "Boston", "unit": "fahrenheit"}), record({"location": "Boston", "unit": "kelvin"})])
    assert kinds_by_row(result) == {1: {"bad_enum"}}
    assert result.summary["rows_with_calls"] == 2 and result.summary["call_styles"] == {"structured": 2}


def test_hermes_tool_call_blocks_and_tools_in_the_system_prompt():
    system = ("You are a function calling AI model. <tools>" + json.dumps(WEATHER) + "</tools> "
              "For each function call return a JSON object inside <tool_call></tool_call> tags.")

    def record(block):
        return {"messages": [{"role": "system", "content": system}, ASK,
                             {"role": "assistant", "content": f"<tool_call>\n{block}\n</tool_call>"},
                             {"role": "tool", "content": "<tool_response>{\"temperature\": 72}</tool_response>"},
                             {"role": "assistant", "content": "It is 72°F in Boston."}]}

    result = run([record('{"name": "get_current_weather", "arguments": {"location": "Boston", "unit": "celsius"}}'),
                  record('{"name": "get_weather", "arguments": {"location": "Boston", "unit": "celsius"}}'),
                  record('{"name": "get_current_weather", "arguments": {"location": "Boston", unit: celsius}')])
    assert kinds_by_row(result) == {1: {"undeclared_tool"}, 2: {"bad_arguments"}}
    assert result.summary["call_styles"] == {"hermes": 3}


def _xlam_run(argument):
    tools = json.dumps([{"name": "live_giveaways_by_type", "description": "Giveaways by type.",
                         "parameters": {argument: {"description": "beta or game", "type": "str", "default": "game"},
                                        "limit": {"description": "How many", "type": "int"}}}])

    def record(answers):
        return {"query": "Where can I find beta giveaways?", "tools": tools, "answers": json.dumps(answers)}

    good = [{"name": "live_giveaways_by_type", "arguments": {argument: "beta", "limit": 3}}]
    bad = [{"name": "live_giveaways_by_type", "arguments": {argument: "beta", "limit": "3"}}]
    result = run([record(good), record(bad), record([{"name": "giveaways", "arguments": {"limit": 3}}])])
    assert kinds_by_row(result) == {1: {"wrong_type"}, 2: {"undeclared_tool"}}
    assert result.findings.filter(result.findings["row"] == 1).get_column("suggested_value").to_list() == ["3"]
    assert result.findings.filter(result.findings["row"] == 2).get_column("suggested_value").to_list() == [
        "live_giveaways_by_type"]


def test_xlam_query_tools_answers():
    _xlam_run("category")


def test_xlam_argument_named_type():
    """An xLAM argument called ``type`` does not make its parameters read as a JSON Schema."""
    _xlam_run("type")


def test_rows_without_tools_cost_nothing_and_get_no_findings():
    result = run([{"messages": [ASK, {"role": "assistant", "content": "Sunny, 22 degrees."}]}] * 3)
    assert result.findings.height == 0 and result.summary["rows_checked"] == 0 and result.summary["calls"] == 0
    assert result.rows.get_column("tools_calls").to_list() == [0, 0, 0]


def test_calls_without_declared_tools_only_check_the_json():
    """No tools, or an empty list (LLaMA-Factory writes ``"tools": "[]"``), declares none to check names against."""
    result = run([chat(calling(call(name="anything")), tools=None),
                  chat(calling(call(name="anything", arguments="not json")), tools=None),
                  chat(calling(call(name="anything")), tools="[]")])
    assert kinds_by_row(result) == {1: {"bad_arguments"}}


def test_unused_declared_tools_are_summary_data():
    result = run([chat(calling(call()), tools=(WEATHER, STRICT)), chat(calling(call()), tools=(WEATHER, STRICT))])
    assert result.summary["unused_tool_count"] == 1
    assert result.summary["unused_tools"] == [{"name": "book_flight", "rows": 2, "example_row": 0}]
    assert result.findings.height == 0


def test_undeclared_arguments_can_be_allowed():
    record = chat(calling(call(arguments='{"location": "Boston, MA", "unit": "celsius", "city": "Boston"}')))
    assert run([record], flag_undeclared_arguments=False).findings.height == 0


def test_report_section_renders_the_counts():
    from dataaudit.report.templating import environment

    result = run([record for record, _, _ in CASES])
    audit = type("Audit", (), {"summary": {"checks": {"tools": result.summary}}})()
    section = ToolsCheck.report_section(audit)
    assert section.template_name == "checks/tools.html.j2"  # the markup lives in the template file
    html = environment().get_template(section.template_name).render(**section.context)
    assert "bad_enum" in html and "distinct schema" in html


def test_export_drop_tools_keeps_every_line(tmp_path):
    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.cluster.reducers import NoReducer
    from dataaudit.embed import HashingEmbedder
    from dataaudit.export import export_clean
    from dataaudit.io.load import load
    from dataaudit.runner import audit

    lines = [json.dumps(record, ensure_ascii=False) for record, _, _ in CASES]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load(path)
    result = audit(dataset, checks=["tools"], embedder=HashingEmbedder(),
                   cluster_pipeline=ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper()))
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    summary = export_clean(dataset, result, clean=clean, rejected=rejected, drop=["tools"])
    kept = clean.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in rejected.read_text(encoding="utf-8").splitlines()]
    assert kept == [line for line, (_, expected, _) in zip(lines, CASES) if not expected]
    assert [entry["record"] for entry in entries] == [line for line, (_, expected, _) in zip(lines, CASES) if expected]
    assert summary.dropped_by_check == {"tools": sum(1 for _, expected, _ in CASES if expected)}


VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.one_of(st.text(max_size=40), VALUE.map(json.dumps)),
       tools=st.one_of(st.none(), VALUE.map(lambda value: [value]), VALUE, st.just([WEATHER])))
def test_any_arguments_and_any_tools_value_never_crash(arguments, tools):
    """Invariant: whatever the arguments text and the tools value, the check runs, flags only
    real rows with known kinds, and calls arguments bad exactly when they are no JSON object."""
    record = {"messages": [ASK, calling(call(arguments=arguments))]}
    if tools is not None:
        record["tools"] = tools
    result = run([record])
    kinds = set(result.findings.get_column("kind"))
    assert kinds <= set(KINDS)
    try:
        is_object = isinstance(json.loads(arguments), dict) if arguments.strip() else True
    except ValueError:
        is_object = False
    assert ("bad_arguments" in kinds) == (not is_object)
    assert result.rows.get_column("tools_score").is_between(0, 1).all()


@settings(max_examples=40, deadline=None)
@given(location=st.text(min_size=1, max_size=20), unit=st.sampled_from(["celsius", "fahrenheit"]),
       days=st.none() | st.integers(-5, 30))
def test_arguments_that_satisfy_the_schema_are_never_flagged(location, unit, days):
    arguments = {"location": location, "unit": unit, **({} if days is None else {"days": days})}
    assert run([chat(calling(call(arguments=json.dumps(arguments))))]).findings.height == 0


NAMES = st.sampled_from(["location", "unit", "days", "description", "title", "type"])
NODE = st.recursive(
    st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["string", "integer", "float", "object", ["string", "null"], 5]),
        "description": st.sampled_from(["The city", 5]),
        "title": st.sampled_from(["Unit", None]),
        "enum": st.sampled_from([["celsius", "fahrenheit"], ["a", "a"], [], "celsius"]),
        "default": st.sampled_from([1, "x", None, {"type": 5}]),
        "minimum": st.sampled_from([1, "1"]),
        "required": st.lists(st.sampled_from(["location", "unit", "days", 3]), max_size=3),
    }),
    lambda inner: st.fixed_dictionaries({}, optional={
        "type": st.just("object"),
        "properties": st.dictionaries(NAMES, inner | st.sampled_from([True, "string"]), max_size=3),
        "required": st.lists(NAMES, max_size=3) | st.just("location"),
        "items": inner,
        "additionalProperties": inner | st.sampled_from([False, "no"]),
    }),
    max_leaves=6,
)
DIALECT = st.sampled_from([None, "https://json-schema.org/draft/2020-12/schema", "http://json-schema.org/draft-07/schema#",
                           "http://json-schema.org/draft-04/schema#"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=NODE, dialect=DIALECT)
def test_node_by_node_schema_checks_agree_with_the_whole_schema_check(schema, dialect):
    """Invariant: the cached node-by-node metaschema check calls a schema invalid exactly when
    jsonschema's own ``check_schema`` of the whole schema does."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    from dataaudit.features.tool_schema import Issue, SchemaCache

    if dialect is not None:
        schema = {"$schema": dialect, **schema}
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
        valid = True
    except SchemaError:
        valid = False
    cache = SchemaCache()
    assert isinstance(cache.validator(schema), Issue) == (not valid)
    assert isinstance(cache.validator(schema), Issue) == (not valid)  # and again, from the cache


def test_cli_audit_then_export_drop_tools(hashing_cli, tmp_path):
    from dataaudit.cli import main

    lines = [json.dumps(record, ensure_ascii=False) for record, _, _ in CASES]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    audit = hashing_cli.invoke(main, ["audit", str(path), "--out", str(tmp_path / "audit"), "--checks", "tools,reasoning",
                                      "--no-cache", "--quiet"])
    assert audit.exit_code == 0, audit.output
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    export = hashing_cli.invoke(main, ["export", str(path), "--audit", str(tmp_path / "audit"), "--drop", "tools",
                                       "--out", str(clean), "--rejected", str(rejected)])
    assert export.exit_code == 0, export.output
    flagged = sum(1 for _, expected, _ in CASES if expected)
    assert f"{flagged} dropped — tools {flagged}" in export.output
    assert clean.read_text(encoding="utf-8").splitlines() == [line for line, (_, e, _) in zip(lines, CASES) if not e]
