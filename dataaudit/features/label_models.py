"""A label model chosen per dataset: the candidate whose out-of-fold probabilities explain the
given labels best.

Which model ranks label errors best differs by dataset. Adding a multinomial logistic regression
to the ridge + kNN blend lifted TREC fine's label-noise F1 from 0.674 to 0.740 but cost CLINC150
0.03-0.04 (bench/bench_label_noise.py). The audit has what it needs to choose without any
benchmark: every candidate's out-of-fold class probabilities on the dataset itself, scored by the
log-loss of the *given* labels (a proper scoring rule; the few wrong labels weigh the same for
every candidate). The lowest wins; the summary records every candidate's loss.

Candidates (:data:`LABEL_MODELS`):

- ``blend``: ridge-softmax blended with kNN label votes (the audit's model before the choice);
- ``ridge`` and ``knn``: either alone;
- ``logistic``: multinomial logistic regression (L2, ``C`` = 1), fitted by L-BFGS;
- ``blend+logistic``: ridge, logistic and kNN, a third each.

The logistic regression costs about rows × classes × dimensions per iteration and fold, and
each candidate is a rows × classes matrix, so the candidates are compared up to
:data:`CHOICE_MAX_CELLS` rows × classes; above that the blend is used as before (the others are
recorded as not compared).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dataaudit.features.confident_learning import (
    add_knn_probabilities,
    knn_probabilities,
    out_of_fold,
    out_of_fold_probabilities,
)

#: Every candidate, in the order ties are broken (the earlier wins).
LABEL_MODELS = ("blend", "ridge", "knn", "logistic", "blend+logistic")
#: Rows × classes up to which the candidates are compared (CLINC150's 15,000 × 150 fits).
CHOICE_MAX_CELLS = 5_000_000
#: L-BFGS iterations per fold: the out-of-fold log-loss has settled by then on sentence embeddings.
LOGISTIC_MAX_ITER = 100


@dataclass(frozen=True)
class LabelModelChoice:
    """The chosen candidate, its probabilities and why: every candidate's out-of-fold log-loss."""

    name: str
    probabilities: np.ndarray
    log_losses: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        runner_up = sorted((loss, name) for name, loss in self.log_losses.items() if name != self.name)
        reason = f"lowest out-of-fold log-loss of the given labels ({self.log_losses[self.name]:.4f}"
        reason += f"; next {runner_up[0][1]} {runner_up[0][0]:.4f})" if runner_up else ")"
        return {"label_model": self.name, "label_model_reason": reason,
                "label_model_log_loss": {name: round(loss, 4) for name, loss in self.log_losses.items()},
                **({"label_model_skipped": dict(self.skipped)} if self.skipped else {})}


def log_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the given labels."""
    return float(-np.log(probabilities[np.arange(len(y)), y] + 1e-12).mean())


def choose(candidates: dict[str, np.ndarray], y: np.ndarray, *, skipped: dict[str, str] | None = None) -> LabelModelChoice:
    """The candidate with the lowest log-loss of ``y`` (ties: the first in ``candidates``)."""
    losses = {name: log_loss(probabilities, y) for name, probabilities in candidates.items()}
    best = min(losses, key=lambda name: (losses[name], list(candidates).index(name)))
    return LabelModelChoice(name=best, probabilities=candidates[best], log_losses=losses, skipped=skipped or {})


def label_model_probabilities(x: np.ndarray, y: np.ndarray, n_classes: int, graph, positions: np.ndarray, *,
                              folds: int, seed: int, knn_weight: float = 0.5, models: tuple[str, ...] = LABEL_MODELS
                              ) -> LabelModelChoice:
    """Out-of-fold probabilities of each of ``models`` for the rows ``positions`` of ``x`` (labelled
    ``y``), and the choice among them. ``graph``: the kNN graph over ``x`` whose votes ``knn`` reads.

    Past :data:`CHOICE_MAX_CELLS` rows × classes there is no choice: the blend is built in place,
    one rows × classes matrix (2 GB at a million rows and 300 classes), as before the choice."""
    skipped: dict[str, str] = {}
    if len(models) > 1 and len(y) * n_classes > CHOICE_MAX_CELLS:
        skipped = {name: f"not compared: {len(y):,} rows × {n_classes} classes is past {CHOICE_MAX_CELLS:,}"
                   for name in models if name != "blend"}
        models = ("blend",)
    if models == ("blend",):
        blend = out_of_fold_probabilities(x, y, n_classes, folds=folds, seed=seed, rows=positions)
        blend *= 1 - knn_weight
        add_knn_probabilities(blend, graph, positions, y, weight=knn_weight)
        return choose({"blend": blend}, y, skipped=skipped)
    ridge = out_of_fold_probabilities(x, y, n_classes, folds=folds, seed=seed, rows=positions)
    votes = knn_probabilities(graph, positions, y, n_classes)
    candidates = {"blend": (1 - knn_weight) * ridge + knn_weight * votes, "ridge": ridge, "knn": votes}
    if any("logistic" in name for name in models):
        logistic = out_of_fold_logistic(x, y, n_classes, folds=folds, seed=seed, rows=positions)
        candidates["logistic"] = logistic
        candidates["blend+logistic"] = (ridge + logistic + votes) / 3
    return choose({name: candidates[name] for name in models}, y, skipped=skipped)


def out_of_fold_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int, seed: int,
                         rows: np.ndarray | None = None, C: float = 1.0) -> np.ndarray:
    """Class probabilities from a multinomial logistic regression that never saw the row.

    The folds are :func:`stratified_folds`, as for the ridge. Each fold starts from zero: the
    previous fold's weights saw this fold's rows."""
    def predict(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
        return softmax_probabilities(x[test], softmax_regression(x[train], labels, n_classes, C=C))

    return out_of_fold(y, n_classes, folds=folds, seed=seed, rows=rows, predict=predict)


def softmax_regression(x: np.ndarray, y: np.ndarray, n_classes: int, *, C: float = 1.0,
                       max_iter: int = LOGISTIC_MAX_ITER) -> np.ndarray:
    """Weights ``(d + 1, classes)`` (the last row the intercepts) minimising the summed log-loss
    plus ``||W||² / 2C`` (scikit-learn's ``LogisticRegression(C=C)``), by L-BFGS in float32."""
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    onehot = np.zeros((n, n_classes), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(d + 1, n_classes).astype(np.float32)
        logits = x @ w[:d] + w[d]
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        total = exp.sum(axis=1, keepdims=True)
        loss = -float((logits * onehot).sum() - np.log(total).sum()) + float((w[:d].astype(np.float64) ** 2).sum()) / (2 * C)
        residual = exp / total - onehot
        gradient = np.vstack([x.T @ residual + w[:d] / C, residual.sum(axis=0, keepdims=True)])
        return loss, gradient.astype(np.float64).ravel()

    found = minimize(loss_and_gradient, np.zeros((d + 1) * n_classes), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return found.x.reshape(d + 1, n_classes)


def softmax_probabilities(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    logits = np.asarray(x, dtype=np.float64) @ weights[:-1] + weights[-1]
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)
