"""Format check: rows that break their cluster's near-unanimous response format."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.checks.format import FormatCheck
from tests.conftest import make_context, make_dataset


def math_answer(i: int, final: str = "#### {n}") -> str:
    n = 10 + i
    return f"She has {i} + 10 = <<{i}+10={n}>>{n} apples.\n" + final.format(n=n)


def math_prompts(n: int) -> list[str]:
    return [f"Sara has {i} apples and gets 10 more. How many apples does she have?" for i in range(n)]


def run_format(prompts, responses, clusters, **params):
    ctx = make_context(make_dataset(prompts, responses), cluster_labels=clusters)
    return FormatCheck(**params).run(ctx)


def flagged(result) -> list[int]:
    return sorted(result.findings.get_column("row").to_list())


@pytest.mark.parametrize(
    ("final", "shown"),
    [
        ("The answer is {n}.", "The answer is 42."),
        ("Answer: {n}", "Answer: 42"),
        ("**{n}**", "**42**"),
        ("{n}", "42"),
        ("\\boxed{{{n}}}", "\\boxed{42}"),
    ],
)
def test_final_answer_rewrite_is_flagged(final, shown):
    responses = [math_answer(i) for i in range(12)] + [math_answer(32, final)]
    result = run_format(math_prompts(13), responses, [0] * 13)
    assert flagged(result) == [12]
    finding = result.findings.row(0, named=True)
    assert finding["reason"] == (
        f"cluster 0 answers end with '#### <number>' in 92% of rows (12/13); this row ends with '{shown}'"
    )
    assert finding["suggestion"] == "End with '#### 42'"
    assert finding["severity"] == "warning"
    assert finding["cluster"] == 0
    assert 0.0 <= finding["score"] < 0.2


def test_each_cluster_keeps_its_own_convention():
    gsm = [math_answer(i) for i in range(10)]
    verbal = [math_answer(i, "The answer is {n}.") for i in range(10)]
    verbal[3] = math_answer(3)  # the one "####" row among "The answer is" rows
    result = run_format(math_prompts(20), gsm + verbal, [0] * 10 + [1] * 10)
    assert flagged(result) == [13]
    finding = result.findings.row(0, named=True)
    assert finding["suggestion"] == "End with 'The answer is 13.'"
    assert "cluster 1 answers end with 'The answer is <number>.'" in finding["reason"]


def test_mixed_feature_flags_no_one():
    responses = [math_answer(i) for i in range(6)] + [math_answer(i, "The answer is {n}.") for i in range(4)]
    result = run_format(math_prompts(10), responses, [0] * 10)
    assert result.findings.height == 0
    clusters = result.clusters.row(0, named=True)
    assert clusters["format_consistency"] == pytest.approx(0.6)
    assert clusters["format_majority"] == "final:####"
    assert result.summary["inconsistent_clusters"] == [0]


def test_missing_marker_is_a_deviation_but_an_extra_marker_is_not():
    prose = [f"Paris has {i} museums worth a visit, and the food is good." for i in range(10)]
    result = run_format([f"Tell me about Paris {i}" for i in range(11)], prose + [math_answer(1)], [0] * 11)
    assert "ending" not in result.summary["deviations_by_feature"]


CODE = "def f{i}(x):\n    y = x * {i}\n    return y"


def test_fenced_code_among_bare_code_is_flagged():
    bare = [CODE.format(i=i) for i in range(10)]
    fenced = "```python\n" + CODE.format(i=99) + "\n```"
    result = run_format([f"Write function {i}" for i in range(11)], bare + [fenced], [0] * 11)
    assert flagged(result) == [10]
    finding = result.findings.row(0, named=True)
    assert "give code without ``` fences in 91% of rows (10/11); this row wraps its code in ``` fences" in finding["reason"]
    assert finding["suggestion"] == "Remove the ``` fences around the code"


def test_half_fenced_cluster_is_inconsistent_not_flagged():
    responses = [CODE.format(i=i) if i % 2 else "```python\n" + CODE.format(i=i) + "\n```" for i in range(10)]
    result = run_format([f"Write function {i}" for i in range(10)], responses, [3] * 10)
    assert result.findings.height == 0
    assert result.summary["inconsistent_clusters"] == [3]
    assert result.clusters.get_column("format_consistency").item() == pytest.approx(0.5)


def test_prose_in_a_json_cluster_is_flagged():
    responses = [f'{{"name": "Person {i}", "amount": {i}}}' for i in range(9)]
    responses.append("The name is Lena Sato and the amount is 666.")
    result = run_format([f"Extract record {i} as JSON." for i in range(10)], responses, [0] * 10)
    assert flagged(result) == [9]
    finding = result.findings.row(0, named=True)
    assert "are a JSON object in 90% of rows (9/10); this row is not JSON (short:phrase)" in finding["reason"]


def test_opener_in_a_direct_cluster_is_info():
    responses = [f"The river {i} flows north through the valley and into the lake." for i in range(10)]
    responses.append("Sure! The river flows north through the valley and into the lake.")
    result = run_format([f"Describe river {i}" for i in range(11)], responses, [0] * 11)
    assert flagged(result) == [10]
    finding = result.findings.row(0, named=True)
    assert finding["severity"] == "info"
    assert "opens with 'Sure!'" in finding["reason"]
    assert finding["suggestion"] == "Drop the opener 'Sure!' and start with the answer"


def test_short_answer_punctuation():
    responses = [f"The capital of country {i} is City{i}." for i in range(10)] + ["The capital of country 10 is City10"]
    result = run_format([f"Capital of country {i}?" for i in range(11)], responses, [0] * 11)
    assert flagged(result) == [10]
    assert "end short answers with '.'" in result.findings.get_column("reason").item()


def test_label_casing_is_left_to_the_conflict_check():
    texts = [f"my card {i} has not arrived" for i in range(10)]
    labels = ["card_arrival"] * 9 + ["Card_Arrival"]
    ctx = make_context(make_dataset(texts, labels=labels), cluster_labels=[0] * 10)
    result = FormatCheck().run(ctx)
    assert result.findings.height == 0
    assert result.summary["skipped"] == "no free-text responses (empty or labels)"


def test_label_like_completions_make_no_format_noise():
    responses = ["card_arrival"] * 9 + ["Card_Arrival"]
    result = run_format([f"my card {i} has not arrived" for i in range(10)], responses, [0] * 10)
    assert result.findings.height == 0


def test_noise_rows_join_their_nearest_cluster():
    responses = [math_answer(i) for i in range(10)] + [math_answer(20, "The answer is {n}.")]
    result = run_format(math_prompts(11), responses, [0] * 10 + [-1])
    assert flagged(result) == [10]
    assert result.findings.get_column("cluster").item() == 0


def test_empty_responses_are_left_to_the_quality_check():
    responses = [math_answer(i) for i in range(10)] + ["", "   "]
    result = run_format(math_prompts(12), responses, [0] * 12)
    assert result.findings.height == 0
    assert result.rows.get_column("format_signature").to_list()[-2:] == [None, None]


def test_output_columns():
    responses = [math_answer(i) for i in range(6)]
    result = run_format(math_prompts(6), responses, [0] * 6)
    assert result.rows.columns == ["row", "format_score", "is_format_issue", "format_signature"]
    assert result.rows.get_column("format_signature").to_list() == ["final:####"] * 6
    assert set(result.clusters.columns) >= {"cluster", "format_consistency", "format_majority"}


def test_small_clusters_learn_nothing():
    responses = [math_answer(i) for i in range(3)] + [math_answer(9, "The answer is {n}.")]
    result = run_format(math_prompts(4), responses, [0] * 4)
    assert result.findings.height == 0


def test_thresholds_are_parameters():
    responses = [math_answer(i) for i in range(7)] + [math_answer(i, "The answer is {n}.") for i in range(3)]
    assert run_format(math_prompts(10), responses, [0] * 10).findings.height == 0
    loose = run_format(math_prompts(10), responses, [0] * 10, majority_share=0.6, minority_share=0.3, prior_rows=0)
    assert flagged(loose) == [7, 8, 9]


@pytest.mark.parametrize("n", [0, 1, 2])
def test_degenerate_sizes(n):
    ctx = make_context(make_dataset(math_prompts(n), [math_answer(i) for i in range(n)]), cluster_labels=[0] * n)
    result = FormatCheck().run(ctx)
    assert result.rows.height == n and result.findings.height == 0


def test_prompt_only_data_is_skipped():
    result = run_format(["a question", "another question"], None, [0, 0])
    assert result.summary["skipped"] == "no responses"
    assert result.findings.height == 0


def test_identical_rows():
    result = run_format(["q"] * 8, [math_answer(1)] * 8, [0] * 8)
    assert result.findings.height == 0
    assert result.clusters.get_column("format_consistency").item() == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=150), st.integers(min_value=-1, max_value=2)), min_size=1, max_size=14))
def test_never_raises_and_scores_stay_in_range(rows):
    labels = [c for _, c in rows]
    if all(c < 0 for c in labels):
        labels[0] = 0
    result = run_format([f"prompt {i}" for i in range(len(rows))], [r for r, _ in rows], labels)
    scores = result.rows.get_column("format_score").to_list()
    assert all(0.0 <= s <= 1.0 for s in scores)
    consistency = result.clusters.get_column("format_consistency").to_list()
    assert all(0.0 <= c <= 1.0 for c in consistency)


def test_formats_described_in_worker_processes_give_the_same_result():
    """Formats come from the engine's map_frame: worker processes and this process agree."""
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from tests.conftest import FixedClusterPipeline

    responses = [math_answer(i) for i in range(36)] + [math_answer(i, "The answer is {n}.") for i in range(36, 40)]
    dataset = make_dataset(math_prompts(40), responses)

    def result(engine):
        ctx = AuditContext(dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(labels=[0] * 40),
                           knn_k=10, seed=0, engine=engine)
        return FormatCheck().run(ctx)

    alone, spread = result(LocalEngine(workers=1)), result(LocalEngine(workers=2, parallel_min_rows=8))
    assert alone.findings.height == 4 and spread.findings.equals(alone.findings) and spread.rows.equals(alone.rows)


def _calling(index: int, style: str) -> dict:
    import json

    call = {"name": "get_weather", "arguments": {"city": f"City{index}"}}
    user = {"role": "user", "content": f"What is the weather in City{index}?"}
    if style == "tool_calls":
        assistant = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(call["arguments"])}}]}
    elif style == "tags":
        assistant = {"role": "assistant", "content": f"<tool_call>{json.dumps(call)}</tool_call>"}
    else:  # the call written as the answer's text
        assistant = {"role": "assistant", "content": json.dumps(call)}
    return {"messages": [user, assistant]}


def test_calling_through_json_text_where_the_cluster_uses_tool_calls_is_a_format_deviation():
    from dataaudit.io.load import from_records

    styles = ["tool_calls"] * 9 + ["json_text"]
    dataset = from_records([_calling(i, style) for i, style in enumerate(styles)])
    result = FormatCheck().run(make_context(dataset, cluster_labels=[0] * len(styles)))
    assert result.findings["row"].to_list() == [9]
    finding = result.findings.row(0, named=True)
    assert (finding["kind"], finding["suggested_value"], finding["severity"]) == ("call_style", "tool_calls", "warning")
    assert "a JSON object written as the answer text" in finding["reason"]
    assert result.rows["format_signature"].to_list() == ["call:tool_calls"] * 9 + ["call:json_text"]


def test_tag_calls_and_text_answers_are_judged_apart():
    from dataaudit.io.load import from_records

    texts = [{"messages": [{"role": "user", "content": f"Say hi {i}"}, {"role": "assistant", "content": f"Hi there, number {i}!"}]}
             for i in range(9)]
    dataset = from_records(texts + [_calling(0, "tags")])
    result = FormatCheck().run(make_context(dataset, cluster_labels=[0] * 10))
    assert result.findings.is_empty()  # a call has no ending or layout for the text answers to outvote
