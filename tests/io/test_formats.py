"""Every supported format maps to the canonical schema, keeping every turn."""

import json

import pytest

from dataaudit.errors import InputError, UsageError
from dataaudit.io.formats import FieldMapping, detect_format
from dataaudit.io.load import from_records, load
from tests.conftest import realdata

CASES = [
    (
        "openai",
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4"}]},
        {"system": "Be brief.", "prompt": "2+2?", "response": "4", "label": None, "turns": 5},
    ),
    (
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Name a colour"}, {"from": "gpt", "value": "Blue"}]},
        {"system": None, "prompt": "Name a colour", "response": "Blue", "label": None, "turns": 2},
    ),
    (
        "alpaca",
        {"instruction": "Translate to French", "input": "cat", "output": "chat"},
        {"system": None, "prompt": "Translate to French\n\ncat", "response": "chat", "label": None, "turns": 2},
    ),
    (
        "alpaca",
        {"instruction": "Say hi", "input": "", "output": "hi"},
        {"system": None, "prompt": "Say hi", "response": "hi", "label": None, "turns": 2},
    ),
    (
        "dolly",
        {"instruction": "Summarise", "context": "Long text.", "response": "Short.", "category": "summarization"},
        {"system": None, "prompt": "Summarise\n\nLong text.", "response": "Short.", "label": None, "turns": 2},
    ),
    (
        "prompt_completion",
        {"prompt": "Q: 1+1", "completion": " 2"},
        {"system": None, "prompt": "Q: 1+1", "response": " 2", "label": None, "turns": 2},
    ),
    (
        "question_answer",
        {"question": "How many?", "answer": "#### 3"},
        {"system": None, "prompt": "How many?", "response": "#### 3", "label": None, "turns": 2},
    ),
    (  # a prompt with a label and no response is classification data: the label is not dropped
        "prompt_completion",
        {"prompt": "where is my card", "label": "card_arrival"},
        {"system": None, "prompt": "where is my card", "response": "card_arrival", "label": "card_arrival", "turns": 2},
    ),
    (
        "question_answer",
        {"question": "Is it spam?", "category": 1},
        {"system": None, "prompt": "Is it spam?", "response": "1", "label": "1", "turns": 2},
    ),
    (  # beside a response, a category is a task tag, not a class: it stays in the raw record
        "prompt_completion",
        {"prompt": "Q: 1+1", "completion": " 2", "category": "math"},
        {"system": None, "prompt": "Q: 1+1", "response": " 2", "label": None, "turns": 2},
    ),
    (  # a multi-label list is no single answer
        "prompt_completion",
        {"prompt": "tag this", "labels": ["a", "b"]},
        {"system": None, "prompt": "tag this", "response": None, "label": None, "turns": 1},
    ),
    (
        "text_label",
        {"text": "where is my card", "intent": "card_arrival"},
        {"system": None, "prompt": "where is my card", "response": "card_arrival", "label": "card_arrival", "turns": 2},
    ),
    (
        "turns",
        {"turns": ["Write a poem", "Shorter"], "reference": None, "category": "writing"},
        {"system": None, "prompt": "Shorter", "response": None, "label": None, "turns": 2},
    ),
    (
        "text",
        {"text": "what is my balance"},
        {"system": None, "prompt": "what is my balance", "response": None, "label": None, "turns": 1},
    ),
]


@pytest.mark.parametrize(("name", "record", "expected"), CASES)
def test_each_format_is_detected_and_mapped(name, record, expected):
    dataset = from_records([record, record])
    assert dataset.format == name
    row = dataset.frame.row(0, named=True)
    for key in ("system", "prompt", "response", "label"):
        assert row[key] == expected[key], key
    assert len(row["messages"]) == expected["turns"]
    assert row["source_format"] == name


def test_multi_turn_conversation_keeps_every_turn_in_order():
    record = CASES[0][1]
    messages = from_records([record]).frame.row(0, named=True)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[3]["content"] == "2+2?"


def test_prompt_only_conversation_has_no_response():
    dataset = from_records([{"messages": [{"role": "user", "content": "hello?"}]}])
    assert dataset.frame.row(0, named=True)["response"] is None
    assert not dataset.has_responses


def test_openai_content_parts_are_joined():
    record = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                           {"role": "assistant", "content": "ok"}]}
    assert from_records([record]).frame.row(0, named=True)["prompt"] == "a\nb"


def test_explicit_fields_override_detection():
    records = [{"q": "why?", "a": "because", "tag": 3}]
    dataset = from_records(records, prompt_field="q", response_field="a", label_field="tag")
    row = dataset.frame.row(0, named=True)
    assert (dataset.format, row["prompt"], row["response"], row["label"]) == ("fields", "why?", "because", "3")


def test_label_field_override_on_detected_format():
    records = [{"text": "hi", "label_coarse": "A", "label_fine": "A:x"}]
    assert from_records(records).frame.row(0, named=True)["label"] == "A"
    assert from_records(records, label_field="label_fine").frame.row(0, named=True)["label"] == "A:x"


def test_forced_format_reports_records_that_do_not_fit():
    with pytest.raises(InputError, match="missing field 'question'"):
        from_records([{"prompt": "x", "completion": "y"}], format="question_answer")


def test_unknown_format_lists_keys_and_known_formats():
    with pytest.raises(InputError, match=r"unknown format: records have keys \{bar, foo\}"):
        from_records([{"foo": 1, "bar": 2}])


def test_unknown_format_name_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown format"):
        from_records([{"prompt": "x"}], format="nope")


def test_wrong_type_is_reported_with_field_name():
    with pytest.raises(InputError, match="field 'output' should be a string, got int"):
        from_records([{"instruction": "a", "output": 5}])


def test_detection_follows_the_majority():
    records = [{"instruction": "a", "output": "b"}] * 9 + [{"prompt": "x", "completion": "y"}]
    assert detect_format(records) == "alpaca"
    assert detect_format([]) is None
    assert detect_format([{"x": 1}]) is None
    assert detect_format(records, mapping=FieldMapping(prompt="x")) == "fields"


@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [
        ("clinc150_oos.jsonl", "text_label", 23700),
        ("banking77.jsonl", "text_label", 13083),
        ("gsm8k.jsonl", "question_answer", 8792),
        ("self_instruct_seed_tasks.jsonl", "alpaca", 175),
        ("alpaca_eval_805.jsonl", "alpaca", 805),
        ("mt_bench_questions.jsonl", "turns", 80),
        ("code_alpaca_2k.jsonl", "alpaca", 2017),
        ("gpteacher_codegen.jsonl", "alpaca", 4535),
        ("gpteacher_roleplay.jsonl", "alpaca", 1923),
        ("trec_qc.jsonl", "text_label", 5952),
    ],
)
def test_realdata_formats_and_counts(name, fmt, count):
    dataset = load(realdata(name))
    assert (dataset.format, len(dataset), len(dataset.bad_lines)) == (fmt, count, 0)
    first = json.loads(realdata(name).read_text(encoding="utf-8").splitlines()[0])
    assert dataset.frame.row(0, named=True)["record"] == json.dumps(first, ensure_ascii=False).encode("utf-8")


# -- broken conversations are rows (the turns check flags them), unusable records bad lines ----------------
def _u(text="What is 2 + 2?"):
    return {"role": "user", "content": text}


def _a(text="4"):
    return {"role": "assistant", "content": text}


BROKEN = [
    [_u(), _u("again"), _a()],  # two user turns in a row
    [_a("Hello!"), _u(), _a()],  # an assistant turn first
    [_u(), _a(), {"role": "system", "content": "late"}, _u(), _a()],  # a system message in the middle
    [_u(""), _a()],  # an empty turn
    [_u(), _a(), _u("unanswered")],  # ends on a user turn
    [_a("only an assistant")],  # no user turn at all
    [{"role": "wizard", "content": "x"}, _u(), _a()],  # a role no template knows
]


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_broken_conversations_load_as_rows_with_sensible_canonical_fields(tmp_path, fmt):
    names = {"user": "human", "assistant": "gpt", "system": "system"}
    if fmt == "openai":
        lines = [json.dumps({"messages": m}) for m in BROKEN]
    else:
        lines = [json.dumps({"conversations": [{"from": names.get(t["role"], t["role"]), "value": t["content"]}
                                                for t in m]}) for m in BROKEN]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n")
    dataset = load(path)
    assert (dataset.format, len(dataset), len(dataset.bad_lines)) == (fmt, len(BROKEN), 0)
    frame = dataset.frame
    assert frame.get_column("response").to_list() == ["4", "4", "4", "4", None, "only an assistant", "4"]
    assert frame.get_column("prompt").to_list() == ["again", "What is 2 + 2?", "What is 2 + 2?", "", "unanswered", "",
                                                    "What is 2 + 2?"]
    assert [len(m) for m in frame.get_column("messages").to_list()] == [len(m) for m in BROKEN]
    assert {key: value for key, value in frame.row(6, named=True)["messages"][0].items() if value is not None} == \
        {"role": "wizard", "content": "x"}
    assert frame.row(2, named=True)["system"] == "late"


@pytest.mark.parametrize("record", [{"messages": []}, {"messages": "hi"}, {"messages": [1]},
                                    {"messages": [{"role": 5, "content": "x"}]}, {"messages": [{"content": "no role"}]},
                                    {"messages": [{"role": "user", "content": {"nested": True}}]}])
def test_unusable_conversations_stay_bad_lines(record):
    dataset = from_records([{"messages": [_u(), _a()]}, record], skip_bad_lines=True)
    assert (len(dataset), len(dataset.bad_lines)) == (1, 1)
    assert "(format openai" in dataset.bad_lines[0].reason
