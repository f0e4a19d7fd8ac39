"""Structural features of responses: table-driven signatures and fields, plus invariants."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.response_format import (
    LENGTH_BAND_ORDER,
    ResponseFormat,
    describe_format,
    final_line,
    final_shape,
    format_signature,
    is_code_line,
    length_band,
)

GSM8K = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72"
BODY = "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips altogether."
PYTHON = "def factorial(n):\n    if n == 0:\n        return 1\n    return n * factorial(n - 1)"
CPP = "#include <iostream>\nusing namespace std;\n\nint main() {\n    int area = 5 * 8;\n    cout << area << endl;\n    return 0;}"
JS = "const express = require('express');\nconst app = express();\n\napp.listen(3000, () => {\n    console.log(`listening`);});"


@pytest.mark.parametrize(
    ("text", "signature"),
    [
        (GSM8K, "final:####"),
        (f"{BODY}\nThe answer is 72.", "final:answer-is"),
        (f"{BODY}\nSo the answer is 72", "final:answer-is"),
        (f"{BODY}\nAnswer: 72", "final:answer-colon"),
        (f"{BODY}\nFinal answer: 72", "final:answer-colon"),
        (f"{BODY}\n**72**", "final:bold"),
        (f"{BODY}\n72", "final:bare-number"),
        (f"{BODY}\n$1,200", "final:bare-number"),
        (f"{BODY}\n\\boxed{{72}}", "final:boxed"),
        (f"{BODY}\n$\\boxed{{72}}$", "final:boxed"),
        ("```python\nprint('hi')\n```", "code:fenced"),
        ("Here is the code:\n\n```js\nconsole.log(1);\n```\n\nIt prints 1.", "code:fenced"),
        (PYTHON, "code:bare"),
        (CPP, "code:bare"),
        (JS, "code:bare"),
        ("SELECT name FROM employees WHERE department = 'Accounting';", "code:bare"),
        ("#!/bin/bash\nfind . -name '*.txt' | wc -l", "code:bare"),
        ('{"name": "Ada", "age": 36}', "json:object"),
        ("[1, 2, 3]", "json:array"),
        ('```json\n{"a": [1, 2]}\n```', "json:object"),
        ("- milk\n- eggs\n- flour", "list:bullets"),
        ("Steps:\n1. Preheat.\n2. Mix.\n3. Bake.", "list:numbered"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "markdown:table"),
        ("# Overview\nSome text here.\n## Details\nMore text.", "markdown:headings"),
        ("positive", "short:label"),
        ("card_arrival", "short:label"),
        ("HUM:ind", "short:label"),
        ("42", "short:number"),
        ("-3.5", "short:number"),
        ("The capital of France is Paris.", "short:phrase"),
        ("Paris is the capital and largest city of France. It is known for the Eiffel Tower, museums and cafes, "
         "and it sits on the Seine river in the north of the country.", "prose"),
        ("", "empty"),
        ("   \n\t", "empty"),
    ],
)
def test_signature(text, signature):
    assert format_signature(describe_format(text)) == signature


@pytest.mark.parametrize(
    ("text", "marker", "answer"),
    [
        (GSM8K, "####", "72"),
        ("x\n#### 1,200", "####", "1,200"),
        (f"{BODY}\nThe answer is 72.", "answer-is", "72"),
        (f"{BODY}\nThe answer is $18.", "answer-is", "$18"),
        (f"{BODY}\nThe answer is 3.5.", "answer-is", "3.5"),
        (f"{BODY}\nAnswer: 72", "answer-colon", "72"),
        (f"{BODY}\n**72**", "bold", "72"),
        (f"{BODY}\n\\boxed{{72}}", "boxed", "72"),
        (f"{BODY}\n72", "bare-number", "72"),
        # not final-answer conventions
        ("72", None, None),  # a single number is a short answer, not a final line
        ("The answer is not obvious, it depends.", None, None),
        (f"{BODY}\n**Good luck with your studies!**", None, None),
        ("I went there on 12 May.", None, None),
    ],
)
def test_final_marker(text, marker, answer):
    fmt = describe_format(text)
    assert (fmt.final_marker, fmt.final_answer) == (marker, answer)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sure! Here is the code:\n```js\nx()\n```", "Sure!"),
        ("Certainly, I can help with that.", "Certainly,"),
        ("Of course. The capital is Paris.", "Of course."),
        ("I'd be happy to explain how it works.", "I'd be happy to"),
        ("Here's the corrected version:\nThe cat sat.", "Here's the corrected version:"),
        ("The capital is Paris.", None),
        ("Surely you know the capital is Paris.", None),
        ("Here is a story about a cat who lived in Paris and loved the sea.", None),
    ],
)
def test_opener(text, expected):
    assert describe_format(text).opener == expected


@pytest.mark.parametrize(
    ("text", "kind", "case", "trailing"),
    [
        ("The capital is Paris.", "phrase", "upper", "."),
        ("the capital is paris", "phrase", "lower", "none"),
        ("Is it Paris?", "phrase", "upper", "?"),
        ("Card_Arrival", "label", "upper", "none"),
        ("card_arrival", "label", "lower", "none"),
        ("7", "number", None, "none"),
        ("line one\nline two", None, None, "none"),
    ],
)
def test_short_answers(text, kind, case, trailing):
    fmt = describe_format(text)
    assert (fmt.short_kind, fmt.initial_case, fmt.trailing) == (kind, case, trailing)


@pytest.mark.parametrize(
    ("text", "balanced", "language"),
    [
        ("```python\nx = 1\n```", True, "python"),
        ("```python\nx = 1\n```\nThen:\n```\ny = 2\n```", True, "python"),
        ("Here:\n```python\ndef f(x):\n    return", False, "python"),
        ("no code at all", True, None),
    ],
)
def test_fences(text, balanced, language):
    fmt = describe_format(text)
    assert (fmt.fences_balanced, fmt.code_language) == (balanced, language)


@pytest.mark.parametrize(
    ("line", "is_code"),
    [
        ("return a;", True),
        ("def f(x):", True),
        ("import numpy as np", True),
        ("x = compute(y)", True),
        ("arr.includes(2); // returns true", True),
        ("'5' === 5  //returns false", True),
        ("print(result)", True),
        ("}", True),
        ("for f in *.txt; do", True),
        ("if [ -e \"$file\" ]; then", True),
        ("fi", True),
        ("The function returns the sum.", False),
        ("For example:", False),
        ("Area = 20 * 24 = 480 square metres", False),  # a worked calculation, not an assignment
        ("If you want, I can help.", False),
        ("Return the book by Friday", False),
    ],
)
def test_code_lines(line, is_code):
    assert is_code_line(line) is is_code


def test_prose_around_a_code_block_is_code():
    text = "Use a dict comprehension:\n\ncounts = {}\nfor word in words:\n    counts[word] = counts.get(word, 0) + 1\n\nThis counts words."
    assert describe_format(text).code == "bare"


def test_gsm8k_math_lines_are_not_code():
    text = "Total = 5 + 3 = <<5+3=8>>8\n#### 8"
    assert format_signature(describe_format(text)) == "final:####"


def test_headings_ignore_the_gsm8k_final_line():
    assert describe_format(GSM8K).headings is False


def test_final_line_templates():
    assert final_line("####", "42") == "#### 42"
    assert final_line("answer-is", "42") == "The answer is 42."
    assert final_line("boxed", "42") == "\\boxed{42}"
    assert final_line("bold", None) == "**<answer>**"
    assert final_line("bare-number", None) == "<number>"
    assert final_shape("####") == "#### <number>"


@pytest.mark.parametrize(("words", "band"), [(0, "empty"), (1, "word"), (2, "short"), (20, "short"), (21, "medium"),
                                              (200, "medium"), (201, "long"), (1001, "very long")])
def test_length_bands(words, band):
    assert length_band(words) == band


def test_none_is_empty():
    fmt = describe_format(None)
    assert fmt.empty and format_signature(fmt) == "empty" and fmt.length_band == "empty"


def test_format_is_frozen_and_hashable():
    fmt = describe_format(GSM8K)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.words = 3  # type: ignore[misc]
    assert hash(fmt) == hash(describe_format(GSM8K))


def test_huge_json_is_not_parsed():
    text = "[" + ", ".join(["1"] * 80_000) + "]"
    assert describe_format(text).json is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_total_on_arbitrary_text(text):
    fmt = describe_format(text)
    assert isinstance(fmt, ResponseFormat)
    assert fmt.words >= 0 and fmt.lines >= 0
    assert fmt.length_band in LENGTH_BAND_ORDER
    signature = format_signature(fmt)
    assert signature and len(signature) <= 32
    assert describe_format(text) == fmt  # deterministic


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["```", "```python", "#### 7", "- a", "1. b", "{", "}", "[1]", "| a |", "|---|---|",
                                 "def f():", "return x;", "The answer is 3.", "Sure!", "**5**", "\\boxed{2}", "", " "]),
                max_size=12))
def test_total_on_structural_fragments(lines):
    fmt = describe_format("\n".join(lines))
    assert format_signature(fmt).split(":")[0] in {"empty", "final", "json", "code", "markdown", "list", "short", "prose"}
