"""The label model is chosen per dataset by the out-of-fold log-loss of the given labels."""

from __future__ import annotations

import numpy as np
import pytest

from dataaudit.features import label_models
from dataaudit.features.label_models import LABEL_MODELS, choose, label_model_probabilities, log_loss
from dataaudit.neighbors import build_knn


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def multimodal() -> tuple[np.ndarray, np.ndarray]:
    """Each class two far-apart sub-clusters on the sphere: one linear direction per class fits."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 16)) * 3
    y = np.repeat(np.arange(6), 100)
    return _unit(centres[y * 2 + rng.integers(0, 2, 600)] + rng.normal(size=(600, 16))), y


def separable_on_sphere() -> tuple[np.ndarray, np.ndarray]:
    """Well-separated classes on the sphere: the ridge and the votes agree, their average is sharpest."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    y = np.repeat(np.arange(6), 100)
    return _unit(centres[y] * 2.0 + rng.normal(size=(600, 16))), y


def interleaved() -> tuple[np.ndarray, np.ndarray]:
    """Two classes of eight tight sub-clusters each, alternating (XOR-like): only neighbours see it."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(16, 8)) * 4
    sub = rng.integers(0, 16, 800)
    return _unit(centres[sub] + rng.normal(size=(800, 8)) * 0.5), sub % 2


def unnormalised_imbalanced() -> tuple[np.ndarray, np.ndarray]:
    """Raw (not unit) vectors, 20 classes from 400 to 20 rows: a logistic regression separates them."""
    rng = np.random.default_rng(0)
    sizes = np.maximum(5, (400 / (1 + np.arange(20))).astype(int))
    y = np.repeat(np.arange(20), sizes)
    centres = rng.normal(size=(20, 32))
    return ((centres[y] + rng.normal(size=(len(y), 32)) * 0.7) * 3.0).astype(np.float32), y


@pytest.mark.parametrize(("dataset", "expected"), [
    (multimodal, "ridge"),
    (separable_on_sphere, "blend"),
    (interleaved, "knn"),
    (unnormalised_imbalanced, "logistic"),
])
def test_each_candidate_wins_on_the_data_built_for_it(dataset, expected):
    x, y = dataset()
    choice = label_model_probabilities(x, y, int(y.max()) + 1, build_knn(x, k=30, seed=0), np.arange(len(y)),
                                       folds=5, seed=0)
    assert choice.name == expected
    assert set(choice.log_losses) == set(LABEL_MODELS)
    assert choice.log_losses[expected] == min(choice.log_losses.values())
    assert choice.log_losses[expected] == pytest.approx(log_loss(choice.probabilities, y))
    summary = choice.summary()
    runner_up = min((loss, name) for name, loss in choice.log_losses.items() if name != expected)[1]
    assert summary["label_model"] == expected and f"next {runner_up} " in summary["label_model_reason"]


@pytest.mark.parametrize("winner", LABEL_MODELS)
def test_the_lowest_log_loss_of_the_given_labels_wins(winner):
    # Every candidate gives the given label 0.6, the winner 0.9: each candidate wins once.
    y = np.array([0, 1, 2, 1, 0])
    candidates = {}
    for name in LABEL_MODELS:
        own = 0.9 if name == winner else 0.6
        probabilities = np.full((len(y), 3), (1 - own) / 2)
        probabilities[np.arange(len(y)), y] = own
        candidates[name] = probabilities
    choice = choose(candidates, y)
    assert choice.name == winner and choice.probabilities is candidates[winner]
    assert choice.summary()["label_model_log_loss"][winner] == pytest.approx(-np.log(0.9), abs=1e-4)


def test_ties_go_to_the_first_candidate():
    y = np.array([0, 1])
    same = np.array([[0.7, 0.3], [0.3, 0.7]])
    assert choose({"blend": same, "logistic": same.copy()}, y).name == "blend"


def test_past_the_size_limit_the_blend_is_used_without_comparing(monkeypatch):
    x, y = separable_on_sphere()
    graph = build_knn(x, k=30, seed=0)
    full = label_model_probabilities(x, y, 6, graph, np.arange(len(y)), folds=5, seed=0)
    monkeypatch.setattr(label_models, "CHOICE_MAX_CELLS", len(y) * 6 - 1)
    capped = label_model_probabilities(x, y, 6, graph, np.arange(len(y)), folds=5, seed=0)
    assert capped.name == "blend" and set(capped.log_losses) == {"blend"}
    assert set(capped.skipped) == set(LABEL_MODELS) - {"blend"}
    assert "label_model_skipped" in capped.summary()
    np.testing.assert_allclose(capped.probabilities, full.probabilities if full.name == "blend" else capped.probabilities)
    np.testing.assert_allclose(capped.probabilities.sum(axis=1), 1.0)


def test_a_forced_model_is_the_only_one_fitted():
    x, y = multimodal()
    choice = label_model_probabilities(x, y, 6, build_knn(x, k=30, seed=0), np.arange(len(y)), folds=5, seed=0,
                                       models=("logistic",))
    assert choice.name == "logistic" and set(choice.log_losses) == {"logistic"}


def test_softmax_regression_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    x, y = unnormalised_imbalanced()
    rows = np.random.default_rng(0).choice(len(y), 400, replace=False)
    x = x[rows] / 3
    y = np.unique(y[rows], return_inverse=True)[1]
    weights = label_models.softmax_regression(x, y, int(y.max()) + 1, C=1.0, max_iter=500)
    ours = label_models.softmax_probabilities(x, weights)
    theirs = LogisticRegression(C=1.0, max_iter=2000, tol=1e-8).fit(x, y).predict_proba(x)
    assert log_loss(ours, y) == pytest.approx(log_loss(theirs, y), abs=2e-3)
