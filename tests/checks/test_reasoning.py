"""The reasoning check: think tags, empty blocks, reasoning without an answer, and the token share."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.reasoning import KINDS, ReasoningCheck
from dataaudit.io.load import from_records
from tests.conftest import make_context

ASK = {"role": "user", "content": "Is 391 a prime number?"}
THOUGHT = "391 = 17 x 23, so it has divisors other than 1 and itself."
ANSWER = "No: 391 = 17 × 23."


def reply(content, **fields):
    return {"messages": [ASK, {"role": "assistant", "content": content, **fields}]}


def run(records):
    dataset = from_records(records)
    assert len(dataset) == len(records) and not dataset.bad_lines
    return dataset, ReasoningCheck().run(make_context(dataset))


def kinds_by_row(result):
    return {row: set(kinds) for row, kinds in result.findings.group_by("row").agg("kind").iter_rows()}


#: (record, the kinds it must raise).
CASES = [
    (reply(f"<think>{THOUGHT}</think>\n\n{ANSWER}"), set()),
    (reply(ANSWER, reasoning_content=THOUGHT), set()),
    (reply(ANSWER), set()),
    (reply(f"<think>{THOUGHT}\n\n{ANSWER}"), {"unclosed_think"}),
    (reply(f"{THOUGHT}</think>\n\n{ANSWER}"), {"stray_think_tag"}),
    (reply(f"{ANSWER} <think>{THOUGHT}</think>"), {"stray_think_tag"}),
    (reply(f"<think>{THOUGHT}</think><think>again</think>{ANSWER}"), {"stray_think_tag"}),
    (reply(f"<think>\n\n</think>\n\n{ANSWER}"), {"empty_reasoning"}),
    (reply(f"<think>{THOUGHT}</think>"), {"no_final_answer"}),
    (reply("", reasoning_content=THOUGHT), {"no_final_answer"}),
    (reply("<think></think>"), {"empty_reasoning", "no_final_answer"}),
    ({"messages": [ASK, {"role": "assistant", "content": "", "reasoning_content": "I should look it up.",
                         "tool_calls": [{"id": "c1", "type": "function",
                                         "function": {"name": "is_prime", "arguments": "{\"n\": 391}"}}]}]}, set()),
    ({"messages": [{"role": "user", "content": "What does </think> mean in a chat template?"},
                   {"role": "assistant", "content": "It closes a reasoning block."}]}, set()),
]


def test_every_fault_kind_is_flagged_and_clean_rows_are_not():
    _, result = run([record for record, _ in CASES])
    by_row = kinds_by_row(result)
    for row, (record, expected) in enumerate(CASES):
        assert by_row.get(row, set()) == expected, (row, record)
    assert {kind for _, kinds in CASES for kind in kinds} == set(KINDS)
    severities = dict(result.findings.select("kind", "severity").unique().iter_rows())
    assert severities == {kind: spec.severity for kind, spec in KINDS.items()}
    assert all("assistant turn 1" in reason for reason in result.findings.get_column("reason"))


def test_empty_blocks_everywhere_are_a_convention_not_a_warning():
    _, result = run([reply(f"<think>\n\n</think>\n\n{ANSWER}"), reply("<think></think>Paris.")])
    assert set(result.findings.get_column("severity")) == {"info"}


def test_the_reasoning_share_of_the_assistant_tokens():
    thought = "one two three four five six"
    _, result = run([reply(f"<think>{thought}</think>a b"), reply("c d e f"), reply("x y", reasoning_content="p q")])
    assert result.rows.get_column("reasoning_tokens").to_list() == [6, 0, 2]
    assert result.rows.get_column("reasoning_share").to_list() == [0.75, None, 0.5]
    summary = result.summary
    assert (summary["rows_with_reasoning"], summary["reasoning_tokens"], summary["answer_tokens"]) == (2, 8, 4)
    assert summary["reasoning_share"] == round(8 / 12, 4)


def test_rows_without_reasoning_cost_nothing():
    _, result = run([reply(ANSWER)] * 4)
    assert result.findings.height == 0 and result.summary["rows_with_reasoning"] == 0
    assert result.summary["reasoning_share"] is None


def test_report_section_shows_the_share_and_the_faults():
    from dataaudit.report.templating import environment

    _, result = run([record for record, _ in CASES])
    audit = type("Audit", (), {"summary": {"checks": {"reasoning": result.summary}}})()
    section = ReasoningCheck.report_section(audit)
    assert section.template_name == "checks/reasoning.html.j2"  # the markup lives in the template file
    html = environment().get_template(section.template_name).render(**section.context)
    assert "unclosed_think" in html and "% of" in html


PIECE = st.sampled_from(["<think>", "</think>", "thinking hard", "the answer", " ", "\n", ""])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents=st.lists(st.lists(PIECE, max_size=6).map("".join), min_size=1, max_size=6))
def test_tags_are_flagged_exactly_when_the_text_left_some(contents):
    """Invariant: a row gets a tag finding iff the loader left a think tag in its answer text,
    and unclosed iff it left more openers than closers."""
    dataset, result = run([reply(content) for content in contents])
    answers = dataset.frame.select(pl.col("messages").list.last().struct.field("content")).to_series().to_list()
    by_row = kinds_by_row(result)
    for row, answer in enumerate(answers):
        kinds = by_row.get(row, set())
        opens, closes = answer.count("<think>"), answer.count("</think>")
        assert ("unclosed_think" in kinds) == (opens > closes)
        assert ("stray_think_tag" in kinds) == (closes >= opens > 0 or closes > opens)
    assert result.rows.get_column("reasoning_score").is_between(0, 1).all()


def test_sharegpt_and_qwen_style_turns():
    """ShareGPT ``gpt`` values carry think blocks; a Qwen-style turn thinks, then calls a tool
    in a ``<tool_call>`` block: the call is the answer, so it is not reasoning without one."""
    call = '<tool_call>\n{"name": "is_prime", "arguments": {"n": 391}}\n</tool_call>'
    records = [
        {"conversations": [{"from": "human", "value": ASK["content"]}, {"from": "gpt", "value": f"<think>{THOUGHT}</think>{ANSWER}"}]},
        {"conversations": [{"from": "human", "value": ASK["content"]}, {"from": "gpt", "value": f"<think>{THOUGHT}"}]},
        {"conversations": [{"from": "human", "value": ASK["content"]}, {"from": "gpt", "value": f"<think>{THOUGHT}</think>\n{call}"}]},
    ]
    dataset, result = run(records)
    assert kinds_by_row(result) == {1: {"unclosed_think"}}
    assert result.summary["rows_with_reasoning"] == 2
    last = dataset.frame.select(pl.col("messages").list.last()).to_series().to_list()
    assert last[2]["reasoning"] == THOUGHT and last[2]["tool_calls"][0]["name"] == "is_prime"
