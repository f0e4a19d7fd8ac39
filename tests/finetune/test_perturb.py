"""perturb: deterministic, meaning-preserving edits that never touch numbers or code."""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.finetune.perturb import PERTURBATIONS, perturb, perturb_all

SENTENCES = [
    "What is the capital of France?",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did she sell altogether?",
    "Write a short poem about the ocean at night.",
    "Summarize the following paragraph in two sentences.",
    "I lost my card yesterday and need a replacement as soon as possible",
    "Can you recommend a good book for a long flight?",
    "Explain the difference between weather and climate.",
    "My transfer of $250 has been pending for 3 days, what should I do?",
    "Translate this sentence into Spanish: the library opens at nine.",
    "Why is the sky blue during the day but red at sunset?",
    "Please cancel my subscription, effective immediately.",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
    "List three benefits of regular exercise",
    "Who painted the ceiling of the Sistine Chapel?",
    "Convert the list to an array with `np.array` before plotting.",
    "The recipe needs 2 cups of flour, 1 egg and a pinch of salt.",
    "Tell me a joke about programmers",
    "Where can I find the nearest charging station for my electric car?",
    "Describe the water cycle for a ten-year-old student.",
]

GOLDEN = "Please describe the largest planets, then compare their moons."


def digit_runs(text: str) -> Counter:
    return Counter(re.findall(r"\d+", text))


def test_perturbations_are_the_four_documented_kinds():
    assert PERTURBATIONS == ("typo", "casing", "punctuation", "word_order")


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_same_text_kind_and_seed_give_the_same_output_whatever_the_batch(kind):
    together = perturb(SENTENCES, kind=kind, seed=3)
    assert together == perturb(SENTENCES, kind=kind, seed=3)
    assert together == [perturb([text], kind=kind, seed=3)[0] for text in SENTENCES]
    assert perturb(SENTENCES[::-1], kind=kind, seed=3) == together[::-1]


def test_seeds_give_different_perturbations():
    outputs = {tuple(perturb(SENTENCES, kind="typo", seed=seed)) for seed in range(5)}
    assert len(outputs) == 5


def test_outputs_are_pinned_so_experiments_stay_reproducible():
    assert perturb_all([GOLDEN], seed=0) == {
        "typo": ["Please describe the larggest plants, then compare their moons."],
        "casing": ["Please Describe The Largest Planets, Then Compare Their Moons."],
        "punctuation": ["Please describe the largest planets then compare their moons."],
        "word_order": ["Please describe the largest planets, then compare moons their."],
    }


def test_outputs_do_not_depend_on_the_interpreter_hash_seed():
    code = f"from dataaudit.finetune.perturb import perturb_all; print(perturb_all([{GOLDEN!r}]))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert outputs == {f"{perturb_all([GOLDEN])}\n"}


@pytest.mark.parametrize("kind", ["typo", "casing", "punctuation"])
def test_every_realistic_sentence_changes(kind):
    for seed in range(3):
        changed = [new != old for new, old in zip(perturb(SENTENCES, kind=kind, seed=seed), SENTENCES)]
        assert all(changed), [text for text, c in zip(SENTENCES, changed) if not c]


def test_word_order_changes_almost_every_realistic_sentence_and_keeps_the_first_word():
    perturbed = perturb(SENTENCES, kind="word_order")
    assert sum(new != old for new, old in zip(perturbed, SENTENCES)) >= 0.95 * len(SENTENCES)
    assert all(new.split()[0] == old.split()[0] for new, old in zip(perturbed, SENTENCES))


def test_typo_edits_about_one_word_in_six():
    text = " ".join(["window", "garden", "pencil", "bottle", "market", "silver"] * 4)
    perturbed = perturb([text], kind="typo")[0]
    edited = sum(a != b for a, b in zip(text.split(), perturbed.split()))
    assert edited == 4
    assert perturb([text], kind="typo", rate=1.0)[0].split() != perturbed.split()
    assert sum(a != b for a, b in zip(text.split(), perturb([text], kind="typo", rate=1.0)[0].split())) == 24


def test_short_texts_still_change_when_they_can():
    assert perturb(["Is it ok?"], kind="typo") != ["Is it ok?"]
    assert perturb(["hello"], kind="casing") != ["hello"]
    assert perturb(["hello"], kind="punctuation") == ["hello."]
    assert perturb(["Hello there."], kind="word_order") != ["Hello there."]


def test_texts_that_cannot_change_are_returned_as_they_are():
    assert perturb(["hello"], kind="word_order") == ["hello"]
    assert perturb(["12 + 30 = 42"], kind="typo") == ["12 + 30 = 42"]
    assert perturb(["1,000 2,500"], kind="word_order") == ["1,000 2,500"]


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_empty_input_and_empty_texts(kind):
    assert perturb([], kind=kind) == []
    assert perturb(["", "   "], kind=kind) == ["", "   "]


def test_code_is_left_alone():
    code = "`df.groupby('user_id').agg(total=('amount', 'sum'))`"
    text = f"Please explain what {code} returns for this dataframe and why someone would use my_helper here"
    for kind in PERTURBATIONS:
        for seed in range(20):
            perturbed = perturb([text], kind=kind, seed=seed, rate=1.0)[0]
            assert code in perturbed and "my_helper" in perturbed


def test_thousands_separators_survive_comma_removal():
    perturbed = {perturb(["We sold 1,000 apples, pears, and plums"], kind="punctuation", seed=s)[0] for s in range(20)}
    assert "We sold 1,000 apples pears and plums" in perturbed
    assert all("1,000" in text for text in perturbed)


def test_dropping_a_detached_final_mark_leaves_no_dangling_space():
    outputs = {perturb(["Who wrote Hamlet ?"], kind="punctuation", seed=seed)[0] for seed in range(10)}
    assert "Who wrote Hamlet" in outputs
    assert not any(text.endswith(" ") for text in outputs)


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="typo, casing, punctuation, word_order"):
        perturb(["hello"], kind="synonym")


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_rate_outside_the_unit_interval_is_rejected(rate):
    with pytest.raises(ValueError, match="rate"):
        perturb(["hello"], kind="typo", rate=rate)


def test_perturb_all_returns_every_kind():
    result = perturb_all(SENTENCES[:3], seed=1)
    assert list(result) == list(PERTURBATIONS)
    assert result["typo"] == perturb(SENTENCES[:3], kind="typo", seed=1)


any_text = st.text(
    alphabet=st.one_of(st.sampled_from(string.printable), st.characters(exclude_categories=("Cs",))), max_size=80
)
ascii_text = st.text(alphabet=string.ascii_letters + string.digits + " ,.!?;:'\"()-`_\n", max_size=80)


@given(text=any_text, kind=st.sampled_from(PERTURBATIONS), seed=st.integers(0, 50))
@settings(max_examples=300, deadline=None)
def test_digits_are_never_changed(text, kind, seed):
    assert digit_runs(perturb([text], kind=kind, seed=seed, rate=1.0)[0]) == digit_runs(text)


@given(text=ascii_text, seed=st.integers(0, 50))
@settings(max_examples=150, deadline=None)
def test_each_kind_only_makes_its_own_kind_of_change(text, seed):
    typo = perturb([text], kind="typo", seed=seed)[0]
    assert abs(len(typo) - len(text)) <= max(1, round(len(text.split()) / 6))
    casing = perturb([text], kind="casing", seed=seed)[0]
    assert casing.lower() == text.lower()
    punctuation = perturb([text], kind="punctuation", seed=seed)[0]
    assert re.sub(r"[.,!?\s]", "", punctuation) == re.sub(r"[.,!?\s]", "", text)
    assert len(punctuation) <= len(text) + 1
    word_order = perturb([text], kind="word_order", seed=seed)[0]
    assert sorted(word_order) == sorted(text)
