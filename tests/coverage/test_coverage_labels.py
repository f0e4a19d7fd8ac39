"""Label-aware coverage: prompts between classes training keeps apart are gaps, calibrated on training."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.coverage import CoverageAnalysis
from dataaudit.coverage.labels import LabelCoverageScorer, combined_gap_score
from dataaudit.embed import PrecomputedEmbedder
from dataaudit.io.load import from_records
from tests.conftest import make_context

DIM = 24


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def sibling_world(seed: int = 0, per_class: int = 60):
    """Six classes; 0 and 1 are siblings, and a missing class sits between them.

    Returns training vectors and labels, covered production vectors (drawn like training) and
    the missing class's production vectors.
    """
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(6, DIM)))
    centres[1] = unit(centres[0] + 0.9 * unit(rng.normal(size=DIM)))
    between = unit(centres[0] + centres[1])

    def draw(centre, n):
        return unit(centre + 0.12 * rng.normal(size=(n, DIM)))

    train = np.vstack([draw(c, per_class) for c in centres])
    labels = [f"intent_{c}" for c in range(6) for _ in range(per_class)]
    covered = np.vstack([draw(c, 15) for c in centres])
    missing = draw(between, 30)
    return train, labels, covered, missing


def test_between_class_prompts_score_low_and_covered_ones_do_not():
    train, labels, covered, missing = sibling_world()
    scorer = LabelCoverageScorer(seed=0).fit(train, labels)
    assert scorer.classes_ == [f"intent_{c}" for c in range(6)]
    between = scorer.score(missing).label_gap_score
    usual = scorer.score(covered).label_gap_score
    assert np.median(between) < 0.05 < np.median(usual)
    assert (usual < 0.05).mean() <= 0.15


def test_own_scores_are_leave_one_out_percentiles():
    train, labels, _, _ = sibling_world()
    scorer = LabelCoverageScorer(seed=0).fit(train, labels)
    assert scorer.own_score_.shape == (len(train),)
    assert ((scorer.own_score_ > 0) & (scorer.own_score_ <= 1)).all()
    # a percentile of its own calibration: about a share q of training rows lie below q
    assert (scorer.own_score_ <= 0.1).mean() <= 0.1 + 1e-9


def test_unlabelled_rows_do_not_vote_or_calibrate():
    train, labels, covered, _ = sibling_world()
    labels = list(labels)
    labels[:5] = [None] * 5
    scorer = LabelCoverageScorer(seed=0).fit(train, labels)
    assert scorer.classes_ == [f"intent_{c}" for c in range(6)]
    assert np.isnan(scorer.own_score_[:5]).all() and not np.isnan(scorer.own_score_[5:]).any()
    assert not np.isnan(scorer.score(covered).label_gap_score).any()


def test_a_single_class_is_not_calibrated():
    train, _, covered, _ = sibling_world()
    scorer = LabelCoverageScorer().fit(train, ["only"] * len(train))
    assert not scorer.is_calibrated
    assert np.isnan(scorer.score(covered).label_gap_score).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 1), st.floats(0.01, 1)), min_size=2, max_size=40),
       st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=20))
def test_the_combination_is_calibrated_and_monotone(own, queries):
    own, queries = np.array(own), np.array(queries)
    combined = combined_gap_score(own[:, 0], own[:, 1], queries[:, 0], queries[:, 1])
    assert ((combined >= 0) & (combined <= 1)).all()
    # training rows against themselves: a share q of them score at most q
    own_combined = combined_gap_score(own[:, 0], own[:, 1], own[:, 0], own[:, 1])
    for q in (0.1, 0.5):
        assert (own_combined <= q).mean() <= q + 1e-9
    # lowering either score never raises the combined one
    assert (combined_gap_score(own[:, 0], own[:, 1], queries[:, 0] / 2, queries[:, 1]) <= combined).all()
    assert (combined_gap_score(own[:, 0], own[:, 1], queries[:, 0], queries[:, 1] / 2) <= combined).all()


def test_a_missing_label_leaves_the_density_score_alone():
    own = np.array([0.2, 0.4, 0.6, 0.8])
    combined = combined_gap_score(own, np.full(4, np.nan), np.array([0.5]), np.array([np.nan]))
    assert combined.tolist() == [0.5]


# -- inside the coverage analysis -------------------------------------------------------------------
def analyse(labelled: bool = True, **params):
    train, labels, covered, missing = sibling_world()
    production = np.vstack([covered, missing])
    train_texts = [f"train {i}" for i in range(len(train))]
    production_texts = [f"production {i}" for i in range(len(production))]
    embedder = PrecomputedEmbedder(texts=train_texts + production_texts, embeddings=np.vstack([train, production]))
    records = ([{"text": t, "label": label} for t, label in zip(train_texts, labels)] if labelled
               else [{"prompt": t} for t in train_texts])
    ctx = make_context(from_records(records), cluster_labels=[int(label[-1]) for label in labels], embedder=embedder)
    result = CoverageAnalysis(**params).run(ctx, from_records([{"prompt": t} for t in production_texts]))
    return result, np.arange(len(production)) >= len(covered)


@pytest.fixture(scope="module")
def labelled():
    return analyse()


def test_the_coverage_frame_carries_both_scores(labelled):
    result, _ = labelled
    coverage = result.coverage
    for column in ("density_gap_score", "label_gap_score", "gap_score"):
        values = coverage.get_column(column)
        assert values.null_count() == 0 and values.min() >= 0 and values.max() <= 1
    assert result.summary["threshold"]["label_aware"] is True
    assert result.summary["threshold"]["label_classes"] == 6


@pytest.mark.parametrize(("view", "found"), [("neighbours", 0.6), ("both", 0.5)])
def test_the_missing_sibling_intent_is_a_gap_and_covered_rows_mostly_are_not(labelled, view, found):
    # A class exactly between two sibling centroids: the neighbours view sees it; the centroid
    # view (near both centroids) does not, so the default combination of the two finds less of it.
    result, missing = labelled if view == "both" else analyse(label_view=view)
    coverage = result.coverage
    is_gap = coverage.get_column("is_gap").to_numpy()
    by_density = coverage.get_column("density_gap_score").to_numpy() < 0.05
    assert is_gap[missing].mean() >= found
    assert is_gap[missing].mean() > by_density[missing].mean() + found - 0.2  # the label view adds what density misses
    assert is_gap[~missing].mean() <= 0.15
    assert result.summary["uncovered_by_labels"] >= missing.sum() * found


def test_without_labels_coverage_is_the_density_score():
    # Without labels (and crowding left out) the calibrated p-value only re-scales the density score.
    for result in (analyse(labelled=False, crowding_alpha=0.0)[0], analyse(use_labels=False, crowding_alpha=0.0)[0]):
        coverage = result.coverage.sort("density_gap_score")
        assert coverage.get_column("label_gap_score").null_count() == coverage.height
        assert (coverage.get_column("gap_score").diff().drop_nulls() >= 0).all()
        assert result.summary["threshold"]["label_aware"] is False


def test_a_fixed_threshold_keeps_the_density_score():
    result, _ = analyse(threshold=0.5)
    coverage = result.coverage
    assert coverage.get_column("label_gap_score").null_count() == coverage.height
    assert coverage.select((pl.col("gap_score") == pl.col("density_gap_score")).all()).item()


def test_label_agreement_weighs_neighbours_by_similarity_and_skips_unlabelled():
    from dataaudit.coverage.labels import label_agreement

    labels = np.array([[0, 0, 1, -1], [0, 1, 2, 3], [-1, -1, -1, -1]])
    similarity = np.array([[0.9, 0.9, 0.2, 0.9], [0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]])
    agreement = label_agreement(labels, similarity)
    assert agreement[0] == pytest.approx(1.8 / 2.0) and agreement[1] == pytest.approx(0.25)
    assert np.isnan(agreement[2])


def test_label_parameters_are_validated():
    from dataaudit.errors import UsageError

    for bad in ({"label_k": 0}, {"label_weight": -1.0}, {"use_labels": "yes"}):
        with pytest.raises((UsageError, ValueError, TypeError)):
            CoverageAnalysis(**bad)
    assert CoverageAnalysis(label_weight=1.0).get_params()["label_weight"] == 1.0
