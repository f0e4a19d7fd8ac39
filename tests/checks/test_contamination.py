"""The contamination check: test items in training data, and what must not count as one."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.base import FINDING_COLUMNS
from dataaudit.checks.contamination import ContaminationCheck, eval_set_names
from dataaudit.errors import UsageError
from dataaudit.io.load import from_records
from tests.conftest import (
    GSM8K_OTHERS,
    GSM8K_QUESTION,
    GSM8K_SOLUTION,
    make_context,
    make_dataset,
)

QUESTION = GSM8K_QUESTION
SHORT = "Who is Larry Page?"
EVAL = [
    {"prompt": QUESTION, "completion": GSM8K_SOLUTION},
    {"prompt": SHORT, "completion": "A co-founder of Google."},
    {"prompt": "Describe the water cycle for a class of young children.", "completion": "Water evaporates, ..."},
    {"prompt": "def count_vowels(s: str) -> int:\n    \"\"\" Write a function that takes a string as input and "
               "returns the number of vowels in it, where y counts only at the end of a word.\n"
               "    >>> count_vowels('abcde')\n    2\n"
               "    \"\"\"\n"},
]
FILLER = [q for q, _ in GSM8K_OTHERS]


def eval_set(records=EVAL):
    return from_records(records)


def run(prompts, *, eval_sets=None, responses=None, **params):
    dataset = make_dataset(prompts, responses if responses is not None else ["ok"] * len(prompts))
    ctx = make_context(dataset)
    ctx.eval_sets = tuple(eval_sets if eval_sets is not None else (eval_set(),))
    return ContaminationCheck(**params).run(ctx)


def flagged(result) -> dict[int, str]:
    return dict(zip(result.findings["row"].to_list(), result.findings["kind"].to_list()))


def test_verbatim_copy_is_an_error_naming_the_eval_item_and_span():
    result = run([*FILLER, QUESTION])
    assert flagged(result) == {3: "verbatim"}
    finding = result.findings.row(0, named=True)
    assert finding["severity"] == "error" and finding["score"] == 0.0 and finding["suggested_value"] is None
    assert "test item 0 of eval_set_1" in finding["reason"] and "Natalia sold clips" in finding["reason"]
    assert finding["suggestion"].startswith("drop it:")
    row = result.rows.filter(pl.col("row") == 3).row(0, named=True)
    found = (row["contamination_source"], row["contamination_eval_row"], row["contamination_kind"])
    assert found == ("eval_set_1", 0, "verbatim")
    assert "13-gram" in row["contamination_method"]
    text = row["contamination_train_text"]
    assert text[row["contamination_train_start"]:row["contamination_train_end"]] == QUESTION.rstrip("?")
    assert result.summary["eval_sets"]["eval_set_1"] == {"items": 4, "items_found": 1, "share_found": 0.25,
                                                          "rows_by_kind": {"verbatim": 1}}


@pytest.mark.parametrize("edit", [
    QUESTION.lower(),
    QUESTION.replace(" ", "   ").replace(", ", " ,"),
    QUESTION.replace("friends", "freinds"),
    QUESTION.replace(",", "").replace("?", "!!"),
    "Please answer this: " + QUESTION,
    "hi! " + QUESTION.upper().replace("APRIL", "APRLI"),
])
def test_lightly_edited_copies_are_flagged(edit):
    result = run([*FILLER, edit])
    assert flagged(result).get(3) in ("verbatim", "near_verbatim")
    assert result.findings["severity"].to_list() == ["error"]


def test_a_dropped_thousands_separator_is_a_light_edit_and_a_changed_number_is_not():
    item = "A shop sells 1,500 pencils in March and 2,250 in April. How many pencils did it sell in both months?"
    result = run([*FILLER, item.replace(",", ""), item.replace("2,250", "2,350")],
                 eval_sets=(eval_set([{"prompt": item, "completion": "3750"}]),))
    assert flagged(result) == {3: "verbatim"}  # "1,500" and "1500" are one number


def test_item_inside_a_longer_prompt_is_contained():
    prompt = ("I am tutoring my niece this weekend and found an exercise in her textbook that I cannot solve myself. "
              f"{QUESTION} Please explain each step slowly and tell me which mistakes children usually make here.")
    result = run([*FILLER, prompt])
    assert flagged(result) == {3: "contained"}
    row = result.rows.filter(pl.col("row") == 3).row(0, named=True)
    assert prompt[row["contamination_train_start"]:row["contamination_train_end"]] == QUESTION.rstrip("?")
    assert row["contamination_coverage"] == 1.0


def test_items_in_responses_and_earlier_turns_are_found():
    records = [{"prompt": "Tell me a maths problem.", "completion": QUESTION},
               {"messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "72"},
                             {"role": "user", "content": "Thanks, and another one?"},
                             {"role": "assistant", "content": "Sure."}]}]
    train = from_records(records[:1])
    chat = from_records(records[1:])
    for dataset, turn in ((train, 1), (chat, 0)):
        ctx = make_context(dataset)
        ctx.eval_sets = (eval_set(),)
        result = ContaminationCheck().run(ctx)
        assert result.rows["contamination_train_turn"].to_list() == [turn]
        assert result.rows["is_contamination_issue"].to_list() == [True]


@pytest.mark.parametrize("prompt", [SHORT, "who is larry page", "Who is Lary Page?",
                                    "Please answer: Who is Larry Page?", "Whoo is Larry Page, please?"])
def test_short_items_without_a_long_ngram_are_flagged(prompt):
    result = run([*FILLER, prompt], candidate_similarity=0.99)  # word pairs find them, not the embeddings
    assert flagged(result).get(3) in ("verbatim", "near_verbatim")
    assert result.rows["contamination_eval_row"].to_list()[3] == 1


def test_a_short_item_inside_a_long_text_or_with_another_name_is_not_flagged():
    long_text = ("My grandmother keeps asking me about famous business people, so I made a quiz for her. The first "
                 f"question is: {SHORT} The second asks about the history of the Ford Motor Company and its founder.")
    result = run([*FILLER, long_text, "Who is Larry King?"], candidate_similarity=0.5)
    assert flagged(result) == {}


def test_a_short_item_with_another_word_or_a_longer_request_is_not_flagged():
    items = eval_set([{"prompt": "What is the largest ocean in the world?"}, {"prompt": "What's the current date?"}])
    result = run([*FILLER, "What is the largest city in the world ?", "what's the current date, month and year",
                  "hi, what's the current date please", "What is the largest blue ocean in the world?"],
                 eval_sets=(items,), candidate_similarity=0.3)
    assert flagged(result) == {5: "verbatim"}


def test_reference_answers_are_compared_only_when_asked():
    code = "def factorial(n):\n    if n == 0:\n        return 1\n    return n * factorial(n - 1)\n"
    items = eval_set([{"prompt": "Write a recursive factorial function in Python for our interview test.",
                       "completion": code}])
    prompts = [*FILLER, "Explain this code, please, in plain words for a beginner programmer.\n\n" + code]
    assert flagged(run(prompts, eval_sets=(items,))) == {}
    assert flagged(run(prompts, eval_sets=(items,), eval_responses=True, min_contained_tokens=8)) == {3: "contained"}


def test_a_paraphrase_close_in_embedding_space_is_only_a_warning():
    # The hashing embedder sees the same words; the reordered sentence is no lexical copy.
    paraphrase = "For a class of young children, describe the cycle of water."
    result = run([*FILLER, paraphrase], candidate_similarity=0.5, embedding_similarity=0.75)
    assert flagged(result) == {3: "embedding"}
    finding = result.findings.row(0, named=True)
    assert finding["severity"] == "warning" and 0.2 <= finding["score"] <= 0.5 and "cosine" in finding["reason"]


def test_same_template_with_other_numbers_is_not_contamination():
    other_numbers = QUESTION.replace("48", "36")
    other_problem = ("Natalia sold cookies to 30 of her neighbours in June, and then she sold twice as many cookies in "
                     "July. How many cookies did Natalia sell altogether in June and July?")
    result = run([*FILLER, other_numbers, other_problem], candidate_similarity=0.3)
    assert flagged(result) == {}
    assert result.rows["contamination_score"].to_list()[3] < 1.0  # a near miss scores below a clean row


def test_a_shared_stock_phrase_is_not_contamination():
    instruction = "Create a Python function that takes a string as input and returns the number of vowels in it."
    result = run([*FILLER, instruction], candidate_similarity=0.3)
    assert flagged(result) == {}


def test_without_eval_sets_nothing_is_flagged():
    result = run([*FILLER, QUESTION], eval_sets=())
    assert result.findings.height == 0
    assert result.summary["skipped"] == "no eval sets" and result.summary["eval_sets"] == {}
    assert result.rows["contamination_score"].to_list() == [1.0] * 4


def test_row_frame_and_findings_contract():
    result = run([*FILLER, QUESTION, SHORT, "Please solve: " + QUESTION.lower()], candidate_similarity=0.5)
    expected = {"row", "contamination_score", "is_contamination_issue", "contamination_source",
                "contamination_eval_row", "contamination_kind", "contamination_method", "contamination_train_start",
                "contamination_train_end", "contamination_eval_start", "contamination_eval_end"}
    assert expected <= set(result.rows.columns)
    assert result.rows["contamination_eval_row"].dtype == pl.Int64
    scores = result.rows["contamination_score"]
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    flags = result.rows["is_contamination_issue"]
    assert (scores.filter(flags) <= 0.5).all() and (scores.filter(~flags) > 0.5).all()
    assert tuple(result.findings.columns) == FINDING_COLUMNS
    assert set(result.findings["kind"]) <= set(ContaminationCheck.kinds)
    json.dumps(result.summary)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([str.lower, str.upper, lambda t: t.replace(" ", "  "), lambda t: t.replace(",", " ;")]),
       st.sampled_from(["", "Please answer: ", "Hey there. "]))
def test_case_spacing_punctuation_and_a_short_prefix_never_hide_a_copy(edit, prefix):
    result = run([*FILLER, prefix + edit(QUESTION)])
    assert result.rows["is_contamination_issue"].to_list() == [False, False, False, True]
    assert result.rows["contamination_coverage"].to_list()[3] == 1.0


def test_empty_training_data_and_eval_sets_without_user_turns_flag_nothing():
    blank = from_records([{"prompt": "   ", "completion": "an answer"}], skip_bad_lines=True)
    result = run([*FILLER], eval_sets=(blank, make_dataset([])))
    assert result.findings.height == 0
    assert result.summary["eval_sets"]["eval_set_2"] == {"items": 0, "items_found": 0, "share_found": 0.0,
                                                          "rows_by_kind": {}}
    ctx = make_context(make_dataset([]))
    ctx.eval_sets = (eval_set(),)
    assert ContaminationCheck().run(ctx).rows.height == 0


def test_eval_set_names_are_file_names_made_unique(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps({"prompt": "x"}) + "\n")
    from dataaudit.io.load import load

    assert eval_set_names((load(path), load(path), eval_set())) == ["bench.jsonl", "bench.jsonl#2", "eval_set_3"]


def test_bad_parameters_are_usage_errors():
    with pytest.raises(UsageError, match="min_coverage"):
        ContaminationCheck(min_coverage=1.5)


def test_report_section_shows_both_texts_with_the_span_marked():

    from dataaudit.result import AuditResult

    evil = "<script>alert(1)</script> " + QUESTION
    result = run([*FILLER, evil])
    audit = AuditResult(rows=result.rows, findings=result.findings, clusters=pl.DataFrame({"cluster": []}),
                        summary={"checks": {"contamination": result.summary}})
    section = ContaminationCheck.report_section(audit)
    from dataaudit.report.templating import environment

    html = environment().get_template(section.template_name).render(**section.context)
    assert "<mark>Natalia sold clips" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert "eval_set_1" in html and "25.0%" in html


def test_cli_audit_with_eval(hashing_cli, tmp_path):
    from dataaudit.cli import main

    train, bench = tmp_path / "train.jsonl", tmp_path / "gsm8k_test.jsonl"
    rows = [{"prompt": q, "completion": a} for q, a in GSM8K_OTHERS] * 2
    rows.append({"prompt": QUESTION.lower(), "completion": "72"})
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench.write_text(json.dumps({"question": QUESTION, "answer": GSM8K_SOLUTION}) + "\n{broken\n")
    out = tmp_path / "out"
    result = hashing_cli.invoke(main, ["audit", str(train), "--eval", str(bench), "--out", str(out), "--quiet",
                                       "--no-cache", "--checks", "contamination"])
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "rows.parquet")
    assert frame.filter(pl.col("is_contamination_issue"))["row"].to_list() == [6]
    assert frame["contamination_source"].to_list()[6] == "gsm8k_test.jsonl"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checks"]["contamination"]["eval_sets"]["gsm8k_test.jsonl"]["items_found"] == 1


def test_cli_audit_with_an_eval_folder_of_shards(hashing_cli, tmp_path):
    """``--eval`` takes a folder of shards like DATA does; ``eval_row`` counts across its files."""
    from dataaudit.cli import main

    train = tmp_path / "train.jsonl"
    rows = [{"prompt": q, "completion": a} for q, a in GSM8K_OTHERS] * 2
    rows.append({"prompt": QUESTION.lower(), "completion": "72"})
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = tmp_path / "gsm8k"
    bench.mkdir()
    first = [{"question": q, "answer": a} for q, a in GSM8K_OTHERS[:2]]
    (bench / "test-0.jsonl").write_text("".join(json.dumps(item) + "\n" for item in first))
    (bench / "test-1.jsonl").write_text(json.dumps({"question": QUESTION, "answer": GSM8K_SOLUTION}) + "\n")
    out = tmp_path / "out"
    result = hashing_cli.invoke(main, ["audit", str(train), "--eval", str(bench), "--out", str(out), "--quiet",
                                       "--no-cache", "--checks", "contamination"])
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "rows.parquet").filter(pl.col("row") == len(rows) - 1)
    assert frame.select("is_contamination_issue", "contamination_source", "contamination_eval_row").row(0) == (
        True, "gsm8k", 2)
