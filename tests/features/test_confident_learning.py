"""Out-of-fold probabilities: the softmax temperature fitted on a sample of a large training set."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features import confident_learning
from dataaudit.features.confident_learning import _temperature_rows, out_of_fold_probabilities


def blobs(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, 24))
    return (centres[y] + 1.2 * rng.standard_normal((n, 24))).astype(np.float32), y


def test_the_temperature_sample_is_every_row_up_to_the_limit_then_a_fixed_sample():
    assert np.array_equal(_temperature_rows(1_000), np.arange(1_000))
    many = _temperature_rows(confident_learning.TEMPERATURE_FIT_ROWS * 3)
    assert len(many) == confident_learning.TEMPERATURE_FIT_ROWS and np.all(np.diff(many) > 0)
    assert np.array_equal(many, _temperature_rows(confident_learning.TEMPERATURE_FIT_ROWS * 3))


def test_a_sampled_temperature_fit_gives_the_probabilities_of_the_full_fit(monkeypatch):
    x, y = blobs(12_000, 6, seed=3)
    full = out_of_fold_probabilities(x, y, 6, folds=3, seed=0)
    monkeypatch.setattr(confident_learning, "TEMPERATURE_FIT_ROWS", 2_000)
    sampled = out_of_fold_probabilities(x, y, 6, folds=3, seed=0)
    np.testing.assert_allclose(sampled, full, rtol=1e-9, atol=1e-12)


def _copying_out_of_fold(x, y, n_classes, *, folds, seed):
    """The formulation before rows were read in place (git 62154d4): each fold's rows copied out of ``x``."""
    from dataaudit.features.confident_learning import (
        TEMPERATURES,
        _log_loss_sum,
        _row_blocks,
        _softmax,
        _temperature_rows,
        stratified_folds,
    )

    def ridge_softmax(x, y, queries, alpha=1.0):
        x_mean = x.mean(axis=0, dtype=np.float64)
        target_mean = np.bincount(y, minlength=n_classes) / len(y)
        gram = np.zeros((x.shape[1], x.shape[1]))
        class_sums = np.zeros((n_classes, x.shape[1]))
        for block in _row_blocks(len(x)):
            centred = x[block].astype(np.float64) - x_mean
            gram += centred.T @ centred
            np.add.at(class_sums, y[block], centred)
        weights = np.linalg.solve(gram + alpha * np.eye(x.shape[1]), class_sums.T)
        losses = np.zeros(len(TEMPERATURES))
        fit = _temperature_rows(len(x))
        for block in _row_blocks(len(fit)):
            rows = fit[block]
            scores = (x[rows].astype(np.float64) - x_mean) @ weights + target_mean
            losses += [_log_loss_sum(scores * t, y[rows]) for t in TEMPERATURES]
        temperature = TEMPERATURES[int(np.argmin(losses))]
        probabilities = np.empty((len(queries), n_classes))
        for block in _row_blocks(len(queries)):
            probabilities[block] = _softmax((queries[block].astype(np.float64) - x_mean) @ weights * temperature
                                            + target_mean * temperature)
        return probabilities

    probabilities = np.full((len(y), n_classes), 1.0 / n_classes)
    fold_of = stratified_folds(y, folds=folds, seed=seed)
    for fold in range(folds):
        test = fold_of == fold
        probabilities[test] = ridge_softmax(x[~test], y[~test], x[test])
    return probabilities


def test_rows_read_in_place_give_the_probabilities_of_copied_rows_to_the_last_bit():
    """The label model reads its rows out of the whole embedding matrix instead of a copy
    (a gigabyte per copy at a million rows): the same arithmetic, so the same bits."""
    x, y = blobs(40_000, 7, seed=5)  # blocks of 16,384 rows: the running sums cross block edges
    labelled = np.flatnonzero(np.random.default_rng(0).random(len(x)) < 0.6)
    expected = _copying_out_of_fold(x[labelled], y[labelled], 7, folds=3, seed=1)
    found = out_of_fold_probabilities(x, y[labelled], 7, folds=3, seed=1, rows=labelled)
    assert np.array_equal(found, expected)
    rows = np.sort(np.random.default_rng(1).choice(len(x), 30_000, replace=False))
    assert np.array_equal(confident_learning._mean_of_rows(x, rows), x[rows].mean(axis=0, dtype=np.float64))


def test_knn_votes_added_in_blocks_equal_the_whole_matrix_blend():
    from types import SimpleNamespace

    rng = np.random.default_rng(2)
    n, k, classes = 40_000, 6, 5
    graph = SimpleNamespace(indices=rng.integers(-1, n, (n, k)), similarities=rng.random((n, k)).astype(np.float32) * 1.2 - 0.1)
    positions = np.flatnonzero(rng.random(n) < 0.7)
    y = rng.integers(0, classes, positions.size)
    base = rng.random((positions.size, classes))
    expected = base * 0.5 + confident_learning.knn_probabilities(graph, positions, y, classes) * 0.5
    found = base * 0.5
    confident_learning.add_knn_probabilities(found, graph, positions, y, weight=0.5)
    assert np.array_equal(found, expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=0, max_size=40), st.floats(-5, 5))
def test_the_temperature_search_finds_the_first_minimum_of_a_convex_sequence(slopes, offset):
    # A convex sequence: the running sum of sorted slopes; rounding makes flat runs (ties).
    steps = np.sort(np.round(slopes))
    values = offset + np.concatenate([[0.0], np.cumsum(steps)])
    asked: list[int] = []

    def value(i: int) -> float:
        asked.append(i)
        return float(values[i])

    assert confident_learning._lowest_convex(value, len(values)) == int(np.argmin(values))
    assert len(set(asked)) <= 2 * int(np.ceil(np.log2(len(values)))) + 1


def test_the_searched_temperature_is_the_full_scans_on_noisy_labels(monkeypatch):
    # The log loss is convex in the temperature; the search must land where scanning every one does.
    for seed in range(4):
        x, y = blobs(3_000, 12, seed=seed)
        noisy = np.where(np.random.default_rng(seed).random(y.size) < 0.2, (y + 1) % 12, y)
        searched = out_of_fold_probabilities(x, noisy, 12, folds=4, seed=seed)
        monkeypatch.setattr(confident_learning, "_lowest_convex",
                            lambda value, count: int(np.argmin([value(i) for i in range(count)])))
        scanned = out_of_fold_probabilities(x, noisy, 12, folds=4, seed=seed)
        monkeypatch.undo()
        assert np.array_equal(searched, scanned)
