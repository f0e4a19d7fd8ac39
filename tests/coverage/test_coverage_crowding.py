"""Crowding: production rows whose neighbourhood is mostly other production rows are gaps,
against production's own typical crowding (so drift of the whole set is not)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.coverage import CoverageAnalysis
from dataaudit.coverage.crowding import CrowdingScorer, binomial_tail
from dataaudit.embed import PrecomputedEmbedder
from dataaudit.io.load import from_records
from dataaudit.neighbors import query_knn
from tests.conftest import make_context

DIM = 24


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def world(seed: int = 0, per_class: int = 60, shift: float = 0.0, missing_rows: int = 20):
    """Six training classes; production holds 15 rows per class drawn like training, plus
    ``missing_rows`` of a topic training lacks, next to class 0. ``shift`` moves all of production one way (drift)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(6, DIM)))
    missing_centre = unit(centres[0] + unit(rng.normal(size=DIM)))

    def draw(centre, n):
        return unit(centre + 0.12 * rng.normal(size=(n, DIM)))

    train = np.vstack([draw(c, per_class) for c in centres])
    labels = [f"intent_{c}" for c in range(6) for _ in range(per_class)]
    drift = shift * unit(rng.normal(size=DIM))
    covered = unit(np.vstack([draw(c, 15) for c in centres]) + drift)
    missing = unit(draw(missing_centre, missing_rows) + drift)
    return train, labels, covered, missing


def crowding(train: np.ndarray, production: np.ndarray, **params):
    scorer = CrowdingScorer(**params)
    scores = scorer.fit_score(production, train, training_graph=query_knn(train, production, k=10))
    return scorer, scores


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.floats(0, 1))
def test_the_binomial_tail_is_exact_and_monotone(k, p):
    tail = binomial_tail(k, p)
    assert tail.shape == (k + 1,)
    assert tail[0] == pytest.approx(1.0)
    assert (np.diff(tail) <= 1e-12).all()
    for c in (0, k // 2, k):
        direct = sum(math.comb(k, j) * p**j * (1 - p) ** (k - j) for j in range(c, k + 1))
        assert tail[c] == pytest.approx(direct, abs=1e-12)


def test_a_topic_training_lacks_crowds_and_rows_drawn_like_training_do_not():
    train, _, covered, missing = world()
    scorer, scores = crowding(train, np.vstack([covered, missing]))
    is_missing = np.arange(len(covered) + len(missing)) >= len(covered)
    assert np.median(scores.count[is_missing]) >= 9
    assert np.median(scores.gap_score[is_missing]) < 1e-4
    assert (scores.gap_score[~is_missing] < 1e-3).mean() <= 0.02
    # the typical crowding is measured on production's least crowded rows, near random mixing
    mixing = (len(covered) + len(missing) - 1) / (len(train) + len(covered) + len(missing) - 1)
    assert mixing <= scorer.expected_share_ < 0.35


def test_production_drifted_as_a_whole_is_not_crowded():
    train, _, covered, _ = world(shift=0.4)
    scorer, scores = crowding(train, covered)
    assert scorer.expected_share_ > 0.3  # production crowds with itself everywhere ...
    assert (scores.gap_score < 1e-4).mean() <= 0.02  # ... which is drift, not a gap


def test_the_null_share_is_never_below_random_mixing():
    train, _, covered, _ = world()
    identical = train[::9]  # each production row sits on its training copy
    scorer, scores = crowding(train, identical)
    assert scorer.expected_share_ == pytest.approx((len(identical) - 1) / (len(train) + len(identical) - 1))
    assert scores.gap_score.min() > 1e-4


def test_a_request_repeated_many_times_counts_once():
    train, _, covered, _ = world()
    repeated = np.vstack([covered, np.repeat(covered[:1], 60, axis=0), unit(covered[1:2] + 1e-4)])
    scorer, scores = crowding(train, repeated)
    assert scorer.distinct_rows_ == len(covered)
    assert (scores.gap_score[len(covered):-1] == scores.gap_score[0]).all()  # each copy takes its first row's score
    assert scores.gap_score[1] == scores.gap_score[-1]
    assert (scores.gap_score < 1e-3).mean() <= 0.02
    apart, counted_apart = crowding(train, repeated, copy_similarity=1.1)  # nothing is a copy
    assert (counted_apart.count[len(covered):-1] == apart.k_).mean() > 0.9  # then the copies crowd themselves


def test_production_as_large_as_training_counts_more_neighbours():
    """Half of every neighbourhood is production by chance alone, and 0.5 ** 10 is above 1e-4:
    with ten neighbours even the missing topic's rows could not be crowded."""
    rng = np.random.default_rng(3)
    train, _, covered, missing = world(per_class=40, missing_rows=40)
    covered = np.vstack([covered] + [unit(covered + 0.05 * rng.normal(size=covered.shape)) for _ in range(2)])
    production = np.vstack([covered, missing])
    is_missing = np.arange(len(production)) >= len(covered)
    fixed, at_ten = crowding(train, production, max_k=10)
    assert fixed.k_ == 10 and fixed.expected_share_ ** 10 > 1e-4
    assert at_ten.gap_score.min() > 1e-4  # the rule could never fire
    scorer, scores = crowding(train, production)
    assert 10 < scorer.k_ <= 2 + math.log(1e-4) / math.log(scorer.expected_share_)  # as many as it takes
    assert scorer.expected_share_ ** scorer.k_ < 1e-4
    assert (scores.gap_score[is_missing] < 1e-4).mean() >= 0.6
    assert (scores.gap_score[~is_missing] < 1e-4).mean() <= 0.02
    _, never = crowding(train, production, alpha=0.0)  # a rule that is off needs no wider count
    assert never.count.max() <= 10
    capped, _ = crowding(train, production, max_k=12)  # nor one that could not fire even at max_k
    assert capped.k_ == 10


def test_tiny_or_trainingless_production_is_never_crowded():
    train, _, covered, _ = world()
    _, one = crowding(train, covered[:1])
    assert one.count.tolist() == [0] and one.gap_score.tolist() == [1.0]
    scorer, alone = crowding(train[:0], covered[:12])
    assert scorer.expected_share_ == 1.0  # nothing but production: every neighbour is expected to be
    assert (alone.gap_score == 1.0).all()


# -- inside the coverage analysis -------------------------------------------------------------------
def analyse(**params):
    train, labels, covered, missing = world()
    production = np.vstack([covered, missing])
    train_texts = [f"train {i}" for i in range(len(train))]
    production_texts = [f"production {i}" for i in range(len(production))]
    embedder = PrecomputedEmbedder(texts=train_texts + production_texts, embeddings=np.vstack([train, production]))
    records = [{"text": t, "label": label} for t, label in zip(train_texts, labels)]
    ctx = make_context(from_records(records), cluster_labels=[int(label[-1]) for label in labels], embedder=embedder)
    result = CoverageAnalysis(**params).run(ctx, from_records([{"prompt": t} for t in production_texts]))
    return result, np.arange(len(production)) >= len(covered)


def test_crowded_rows_are_gaps_and_alpha_zero_turns_the_rule_off():
    result, missing = analyse()
    off, _ = analyse(crowding_alpha=0.0)
    scores = result.coverage.get_column("crowding_gap_score")
    assert scores.null_count() == 0 and scores.min() >= 0 and scores.max() <= 1
    assert scores.to_list() == off.coverage.get_column("crowding_gap_score").to_list()  # reported either way
    is_gap = result.coverage.get_column("is_gap").to_numpy()
    was_gap = off.coverage.get_column("is_gap").to_numpy()
    crowded = scores.to_numpy() < 1e-4
    assert crowded[missing].mean() >= 0.75 and crowded[~missing].mean() <= 0.02
    assert is_gap[crowded].all()
    assert result.summary["uncovered_by_crowding"] == crowded.sum()
    assert off.summary["uncovered_by_crowding"] == 0
    assert (is_gap | ~was_gap).all()  # the rule only adds gaps
    assert "crowding" in result.summary["threshold"]["description"]
    assert "crowding" not in off.summary["threshold"]["description"]


def test_a_fixed_similarity_threshold_ignores_crowding():
    result, _ = analyse(threshold=0.2)
    assert result.summary["uncovered_by_crowding"] is None
    assert not result.coverage.get_column("is_gap").any()  # every row is closer than 0.2
