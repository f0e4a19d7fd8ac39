"""The gap decision flags the rate asked for on in-distribution data (split- and cross-conformal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.coverage import CoverageAnalysis
from dataaudit.coverage.calibration import (
    GapCalibration,
    calibration_folds,
    combined_statistic,
    conformal_p_values,
    near_copy_groups,
    regrouped_folds,
)
from dataaudit.embed import PrecomputedEmbedder
from dataaudit.errors import UsageError
from dataaudit.io.load import from_records
from tests.conftest import make_context


@settings(max_examples=40, deadline=None, derandomize=True)
@given(m=st.integers(5, 3000), alpha=st.floats(0.01, 0.3), seed=st.integers(0, 2**16))
def test_conformal_p_values_flag_the_rate_asked_for_on_exchangeable_rows(m, alpha, seed):
    # Over many calibration draws the share flagged is exactly floor(alpha (m + 1)) / (m + 1):
    # at most alpha, and less than 1 / (m + 1) below it.
    rng = np.random.default_rng(seed)
    draws = 200
    calibration, test = rng.normal(size=(draws, m)), rng.normal(size=(draws, 500))
    shares = np.array([(conformal_p_values(c, t) <= alpha).mean() for c, t in zip(calibration, test)])
    expected = math.floor(alpha * (m + 1)) / (m + 1)
    spread = math.sqrt(max(expected * (1 - expected), 1e-4) * (1 / m + 1 / 500) / draws)
    assert abs(shares.mean() - expected) <= 5 * spread + 1e-9
    assert expected <= alpha and alpha - expected < 1 / (m + 1)


def test_p_values_count_ties_and_keep_nan():
    p = conformal_p_values(np.array([0.1, 0.2, 0.2, np.nan, 0.5]), np.array([0.0, 0.2, 1.0, np.nan]))
    np.testing.assert_allclose(p[:3], [1 / 5, 4 / 5, 5 / 5])
    assert np.isnan(p[3])
    assert np.isnan(conformal_p_values(np.array([]), np.array([0.3]))).all()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), share=st.floats(0.01, 0.9), max_rows=st.integers(1, 3000), min_rows=st.integers(1, 3000))
def test_calibration_folds_hold_each_row_out_at_most_once_and_never_all(n, share, max_rows, min_rows):
    fold_of = calibration_folds(n, share=share, max_rows=max_rows, min_rows=min_rows, seed=0)
    assert len(fold_of) == n
    held = fold_of >= 0
    assert held.sum() <= max(max_rows, 0) or n < 2
    for fold in np.unique(fold_of[held]):
        assert 0 < (fold_of == fold).sum() < n  # the rest is never empty
    if held.any():
        assert np.array_equal(np.unique(fold_of[held]), np.arange(fold_of.max() + 1))


def test_one_split_when_it_is_large_enough_and_folds_otherwise():
    split = calibration_folds(100_000, share=0.1, max_rows=10_000, min_rows=2_000, seed=0)
    assert split.max() == 0 and (split == 0).sum() == 10_000
    folds = calibration_folds(15_000, share=0.1, max_rows=10_000, min_rows=2_000, seed=0)
    assert (folds >= 0).sum() == 10_000 and folds.max() == 6  # folds of 1,500 rows


def test_the_combined_statistic_is_the_weighted_minimum():
    dl = np.array([0.5, 0.01, np.nan, 0.5, np.nan])
    crowding = np.array([0.5, 0.5, 0.001, 1e-5, np.nan])
    similarity = np.ones(5)
    np.testing.assert_allclose(combined_statistic(dl, crowding, similarity, crowding_weight=0.01)[:4], [0.5, 0.01, 0.1, 0.001])
    assert np.isnan(combined_statistic(dl, crowding, similarity, crowding_weight=0.01)[4])
    np.testing.assert_allclose(combined_statistic(dl, crowding, similarity, crowding_weight=0.0)[[0, 1, 3]], [0.5, 0.01, 0.5])
    # Below every training row the scores tie at 0: the row further from training ranks lower.
    tied = combined_statistic(np.zeros(2), np.ones(2), np.array([0.1, 0.7]), crowding_weight=0.01)
    assert tied[0] < tied[1] and np.allclose(tied, 0.0, atol=1e-8)


def test_the_calibration_states_its_threshold():
    calibration = GapCalibration.fit(np.linspace(0, 1, 99), 1, alpha=0.05)
    assert calibration.statistic == pytest.approx(np.linspace(0, 1, 99)[4])  # the 5th smallest of 99: p = 5/100
    assert calibration.held_out_flagged == 4 and calibration.method == "split-conformal"  # strictly below it
    assert GapCalibration.fit(np.linspace(0, 1, 10), 3, alpha=0.05).statistic is None  # 1/11 > 0.05: nothing can be


# -- the whole analysis on in-distribution data ---------------------------------------------------
def mixture(rows: int, rng: np.random.Generator, centres: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Rows of a mixture of tight directions on the sphere, and which direction each comes from."""
    which = rng.integers(0, len(centres), rows)
    vectors = centres[which] + rng.normal(size=(rows, centres.shape[1])) * 0.35
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), [f"topic{w}" for w in which]


def analyse_in_distribution(train_rows: int, production_rows: int, alpha: float, seed: int, *, labelled: bool,
                            **params):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 16))
    train, labels = mixture(train_rows, rng, centres)
    production, _ = mixture(production_rows, rng, centres)
    train_texts = [f"train {i}" for i in range(train_rows)]
    production_texts = [f"production {i}" for i in range(production_rows)]
    embedder = PrecomputedEmbedder(texts=train_texts + production_texts, embeddings=np.vstack([train, production]))
    records = [{"text": t, "label": label} if labelled else {"prompt": t} for t, label in zip(train_texts, labels)]
    ctx = make_context(from_records(records), cluster_labels=[int(label[5:]) for label in labels], embedder=embedder)
    return CoverageAnalysis(alpha=alpha, seed=seed, **params).run(ctx, from_records([{"prompt": t} for t in production_texts]))


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(train_rows=st.integers(150, 700), production_rows=st.integers(300, 700),
       alpha=st.sampled_from([0.02, 0.05, 0.1, 0.2]), labelled=st.booleans(), seed=st.integers(0, 100))
def test_the_share_flagged_on_in_distribution_production_is_the_rate_asked_for(train_rows, production_rows, alpha,
                                                                                labelled, seed):
    result = analyse_in_distribution(train_rows, production_rows, alpha, seed, labelled=labelled)
    summary = result.summary
    calibration_rows = summary["threshold"]["calibration_rows"]
    assert summary["threshold"]["alpha"] == alpha and calibration_rows >= min(train_rows, 10_000) * 0.99
    # Binomial spread of the production sample and of the calibration quantile, and the 1/(m+1) step.
    spread = math.sqrt(alpha * (1 - alpha) / production_rows) + math.sqrt(alpha * (1 - alpha) / calibration_rows)
    by_rule = summary["individually_uncovered_rows"] / production_rows
    assert abs(by_rule - alpha) <= 4 * spread + 1 / (calibration_rows + 1)
    assert abs(summary["gap_share"] - alpha) <= 4 * spread + 1 / (calibration_rows + 1) + 0.01  # growth adds little
    assert summary["evaluation_gap"]["held_out"]["gap_share"] <= alpha
    assert summary["uncovered_by_density_and_labels"] + summary["uncovered_by_crowding"] >= summary["individually_uncovered_rows"]


def test_alpha_is_a_declared_constraint():
    for bad in (0.0, 1.0, -0.1, 2):
        with pytest.raises(UsageError, match="alpha"):
            CoverageAnalysis(alpha=bad)


def test_copies_are_held_out_together_and_a_giant_group_falls_back_to_rows():
    groups = np.repeat(np.arange(50), 4)  # 50 groups of 4 copies
    fold_of = calibration_folds(200, share=0.1, max_rows=10_000, min_rows=2_000, seed=0, groups=groups)
    assert (fold_of >= 0).all()
    for group in range(50):
        assert len(set(fold_of[groups == group])) == 1
    one_group = calibration_folds(200, share=0.1, max_rows=10_000, min_rows=2_000, seed=0, groups=np.zeros(200))
    np.testing.assert_array_equal(one_group, calibration_folds(200, share=0.1, max_rows=10_000, min_rows=2_000, seed=0))


def test_near_copy_groups_chain_neighbours_at_least_that_alike():
    from dataaudit.neighbors import KnnGraph

    graph = KnnGraph(indices=np.array([[1, 2], [0, 2], [1, 3], [2, 0]]),
                     similarities=np.array([[0.99, 0.5], [0.99, 0.985], [0.985, 0.3], [0.3, 0.2]], dtype=np.float32))
    groups = near_copy_groups(graph, 0.98)
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_regrouped_folds_deal_the_same_rows_again_keeping_only_the_given_groups_together():
    paraphrases = np.repeat(np.arange(20), 10)  # 20 paraphrase groups of 10 rows
    fold_of = calibration_folds(200, share=0.1, max_rows=150, min_rows=1_000, seed=0, groups=paraphrases)
    copies = np.repeat(np.arange(100), 2)  # each paraphrase group holds 5 pairs of copies
    regrouped = regrouped_folds(fold_of, copies, seed=0)
    np.testing.assert_array_equal(regrouped >= 0, fold_of >= 0)  # the same rows held out
    assert regrouped.max() == fold_of.max()  # as many folds
    for group in range(100):
        assert len(set(regrouped[copies == group])) == 1
    # Paraphrase groups are dealt apart: some fold holds part of a group, not all of it.
    assert any(len(set(regrouped[paraphrases == group])) > 1 for group in range(20) if (fold_of[paraphrases == group] >= 0).all())


def test_paraphrase_groups_calibrate_density_and_crowding_apart():
    """With ``group_similarity`` below ``crowding_group_similarity`` crowding gets folds of its own;
    the promise on in-distribution production still holds as an upper bound."""
    result = analyse_in_distribution(400, 400, 0.1, 3, labelled=True, group_similarity=0.9)
    summary = result.summary
    assert summary["threshold"]["calibration_rows"] >= 396
    assert summary["evaluation_gap"]["held_out"]["gap_share"] <= 0.1
    assert summary["individually_uncovered_rows"] / 400 <= 0.1 + 4 * math.sqrt(0.09 / 400) + 4 * math.sqrt(0.09 / 400)
