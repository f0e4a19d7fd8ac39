"""Final-answer extraction: table-driven cases plus invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.answers import extract_final_answer, normalize_answer, normalize_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GSM8K solutions end in "#### N"
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72"),
        ("#### 1,200", "1200"),
        ("She pays $5.\n#### $5.00", "5"),
        ("#### -3", "-3"),
        ("#### 0.50", "0.5"),
        ("x\n#### 7\nmore\n#### 8", "8"),
        # explicit markers
        ("The answer is 72.", "72"),
        ("So the answer is 72 clips, because 48 + 24 = 72.", "72"),
        ("The answer is $1,200.00.", "1200"),
        ("Therefore, the final answer is 3.5", "3.5"),
        ("Final answer: (B)", "B"),
        ("The correct option is D.", "D"),
        ("Answer: yes", "yes"),
        ("So the answer is: No.", "no"),
        ("The answer is 75%.", "75"),
        # LaTeX
        (r"Hence $x = \boxed{12}$.", "12"),
        (r"\boxed{\frac{1}{2}}", "1/2"),
        (r"\boxed{5\text{ cm}}", "5"),
        # short responses are answers in their own right
        ("72", "72"),
        ("  72 ", "72"),
        ("1,000,000", "1000000"),
        ("3 / 4", "3/4"),
        ("Yes", "yes"),
        ("no.", "no"),
        ("(C) Paris", "C"),
        ("B", "B"),
        ("b)", "B"),
        ("Positive", "positive"),
        ("Card-Arrival", "card arrival"),
        ("card_arrival", "card arrival"),
        ("A dog", "a dog"),
        # long yes/no answers
        ("Yes, because water boils at 100 degrees at sea level.", "yes"),
        ("No. The capital of Australia is Canberra, not Sydney.", "no"),
        # nothing clear to extract
        ("", None),
        ("   ", None),
        (None, None),
        ("It depends on many things, and this response is too long to be a label.", None),
        ("To find the answer, we first add the two numbers and then divide them by 3 and 4.", None),
        ("The answer depends on the weather, which nobody can predict well.", None),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_last_number_fallback_only_when_asked():
    text = "She had 5 apples and bought 3 more, so now she has 8 apples in her basket."
    assert extract_final_answer(text) is None
    assert extract_final_answer(text, last_number_fallback=True) == "8"


def test_a_marker_beats_the_fallback():
    assert extract_final_answer("3 + 4 = 7. The answer is 7. Check: 7 - 4 = 3", last_number_fallback=True) == "7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("$1,200.00", "1200"), ("-0.50", "-0.5"), ("75%", "75"), ("3 / 4", "3/4"), ("007", "7"), ("1.", "1"),
     ("abc", None), ("", None), ("1/x", None)],
)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


def test_equal_answers_written_differently_normalise_alike():
    spellings = ["#### 1,200", "The answer is $1200.", "1200.00", r"\boxed{1200}", "Final answer: 1,200 dollars"]
    assert {extract_final_answer(text) for text in spellings} == {"1200"}


def test_normalize_answer_of_multiple_numbers_is_a_label_not_the_first_number():
    assert normalize_answer("3 bedrooms and 2 baths") == "3 bedrooms and 2 baths"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_extraction_never_raises_and_answers_are_normal_forms(text):
    answer = extract_final_answer(text)
    assert answer is None or (answer and answer == answer.strip() and "\n" not in answer)
    if answer is not None:
        assert normalize_answer(answer) == answer


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-10**9, max_value=10**9))
def test_integers_round_trip_through_every_marker(value):
    for text in (f"#### {value}", f"The answer is {value}.", f"{value:,}"):
        assert extract_final_answer(text) == str(value)
