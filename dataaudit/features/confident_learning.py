"""Confident learning: which given labels the rest of the data contradicts.

Out-of-fold class probabilities (a ridge-softmax on embeddings, optionally blended with kNN label
votes) and the confident-joint estimate of how many labels are wrong (Northcutt et al., 2021).
Kept apart from the conflict check, which only orchestrates, so the coverage analysis and the
benches can reuse the same probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

#: The lowest per-class threshold the conflict check uses (see :func:`confident_label_issues`).
MIN_CLASS_THRESHOLD = 0.3
#: Softmax temperatures tried when calibrating the ridge scores (sentence-embedding scores are small).
TEMPERATURES = tuple(np.geomspace(1.0, 200.0, 24))
#: Rows at most whose log loss picks the softmax temperature (see :func:`_temperature_rows`).
TEMPERATURE_FIT_ROWS = 50_000


@dataclass(frozen=True)
class LabelIssues:
    flagged: np.ndarray  # (n,) bool
    predicted: np.ndarray  # (n,) int: the most probable class other than the given one
    estimated: int  # label errors estimated from the confident joint


def confident_label_issues(y: np.ndarray, probabilities: np.ndarray, *, min_threshold: float = 0.0) -> LabelIssues:
    """Rows whose given label is most likely wrong, by confident learning (Northcutt et al., 2021).

    Each class's threshold is the mean probability its own rows give it, raised to
    ``min_threshold`` where it is lower. A row confidently belongs to class j when p_j clears
    j's threshold (the most probable such j); rows that confidently belong to a class other
    than their label — the off-diagonal of the confident joint — estimate *how many* labels
    are wrong. That many rows are flagged, the ones whose given label has the lowest
    probability (self-confidence), provided some other class is more probable than the given one.

    Why the floor: a class the model barely learns (a few rows among 50 fine-grained classes)
    has a mean self-confidence near 0.1, so almost any ambiguous row "confidently" belongs to it
    and the estimate balloons — 3.8× the planted flips on TREC fine, which flagged four clean
    rows per flip. With a floor of 0.3 the estimate stays near the truth there, while classes the
    model learns well (thresholds far above 0.3, as on Banking77 and CLINC150) are untouched.
    ``bench/bench_label_noise.py --levers`` measures it against the other levers.
    """
    n, k = probabilities.shape
    self_confidence = probabilities[np.arange(n), y]
    members = np.bincount(y, minlength=k)
    thresholds = np.where(members > 0, np.bincount(y, weights=self_confidence, minlength=k) / np.maximum(members, 1), 1.0)
    thresholds = np.maximum(thresholds, min_threshold)
    # Row blocks: each step makes rows × classes temporaries, gigabytes for a million rows.
    estimated = 0
    predicted = np.empty(n, dtype=np.int64)
    best_other = np.empty(n)
    for block in _row_blocks(n):
        chunk, given = probabilities[block], y[block]
        rows = np.arange(len(given))
        above = chunk >= thresholds[None, :] - 1e-12
        confident = np.where(above, chunk, -1.0).argmax(axis=1)
        estimated += int((above.any(axis=1) & (confident != given)).sum())
        others = chunk.copy()
        others[rows, given] = -1.0
        predicted[block] = others.argmax(axis=1)
        best_other[block] = others[rows, predicted[block]]
    flagged = np.zeros(n, dtype=bool)
    flagged[np.argsort(self_confidence, kind="stable")[:estimated]] = True
    flagged &= best_other > self_confidence
    return LabelIssues(flagged=flagged, predicted=predicted, estimated=estimated)


def out_of_fold_probabilities(x: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int, seed: int,
                              alpha: float = 1.0, rows: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities for each row from a model that never saw the row.

    The model is ridge regression onto one-hot labels with a softmax whose temperature is
    fitted by log-loss: on sentence embeddings it ranks label errors about as well as
    logistic regression at a small fraction of the cost (one d×d solve per fold).
    ``rows``: the rows of ``x`` that ``y`` labels (default: all of them, in order). They are
    read from ``x`` block by block, never copied out: at a million rows each copy of the
    training rows is a gigabyte beside the rows × classes answer.
    """
    return out_of_fold(y, n_classes, folds=folds, seed=seed, rows=rows,
                       predict=lambda train, labels, test: _ridge_softmax(x, train, labels, test, n_classes, alpha))


def out_of_fold(y: np.ndarray, n_classes: int, *, folds: int, seed: int, rows: np.ndarray | None,
                predict) -> np.ndarray:
    """Per row, the probabilities ``predict(train_rows, train_labels, test_rows)`` gives from the
    :func:`stratified_folds` that leave the row out; uniform where a fold has no rows to learn from.
    One loop for every label model, so each candidate is scored on the same folds."""
    rows = np.arange(len(y)) if rows is None else np.asarray(rows, dtype=np.int64)
    probabilities = np.full((len(y), n_classes), 1.0 / n_classes)
    fold_of = stratified_folds(y, folds=folds, seed=seed)
    for fold in range(folds):
        test = fold_of == fold
        if test.any() and not test.all():
            probabilities[test] = predict(rows[~test], y[~test], rows[test])
    return probabilities


def stratified_folds(y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """A fold number per row, each class spread evenly over the folds, seeded.

    Classes start at a random fold, so rare classes do not all pile into fold 0.
    """
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        fold_of[members] = (np.arange(members.size) + rng.integers(folds)) % folds
    return fold_of


def _ridge_softmax(x: np.ndarray, train: np.ndarray, y: np.ndarray, queries: np.ndarray, n_classes: int,
                   alpha: float) -> np.ndarray:
    """Ridge onto one-hot targets, softmax at the log-loss-best temperature, in row blocks.

    ``train`` (labelled ``y``) and ``queries`` index rows of ``x``. Nothing rows × classes is
    built besides the answer and the scores of the temperature's fit rows (at most
    :data:`TEMPERATURE_FIT_ROWS`): the normal equations need only the d × d Gram matrix and the
    per-class sums of the centred rows (centred rows sum to zero, so ``centredᵀ (targets −
    mean)`` is exactly those sums), and the temperature's log loss adds up block by block. A
    one-hot matrix of a million rows × 300 classes alone is 2.4 GB.
    """
    x_mean = _mean_of_rows(x, train)
    target_mean = np.bincount(y, minlength=n_classes) / len(y)
    if train.size < x.shape[1]:  # fewer rows than dimensions: the dual system is smaller
        centred = x[train].astype(np.float64) - x_mean
        dual = np.linalg.solve(centred @ centred.T + alpha * np.eye(centred.shape[0]), np.eye(n_classes)[y] - target_mean)
        weights = centred.T @ dual
    else:
        gram = np.zeros((x.shape[1], x.shape[1]))
        class_sums = np.zeros((n_classes, x.shape[1]))
        for block in _row_blocks(train.size):
            centred = x[train[block]].astype(np.float64) - x_mean
            gram += centred.T @ centred
            np.add.at(class_sums, y[block], centred)
        weights = np.linalg.solve(gram + alpha * np.eye(x.shape[1]), class_sums.T)
    fit = _temperature_rows(train.size)
    blocks = [((x[train[fit[block]]].astype(np.float64) - x_mean) @ weights + target_mean, y[fit[block]])
              for block in _row_blocks(len(fit))]

    def loss(t: int) -> float:
        return sum(_log_loss_sum(scores * TEMPERATURES[t], labels) for scores, labels in blocks)

    temperature = TEMPERATURES[_lowest_convex(loss, len(TEMPERATURES))]
    probabilities = np.empty((queries.size, n_classes))
    for block in _row_blocks(queries.size):
        probabilities[block] = _softmax((x[queries[block]].astype(np.float64) - x_mean) @ weights * temperature
                                        + target_mean * temperature)
    return probabilities


def _lowest_convex(value, count: int) -> int:
    """``argmin(value(i) for i in range(count))`` of a convex sequence, from about 2·log2(count) values.

    The softmax's log loss is convex in its temperature (exactly so while no row's probability
    falls under the loss's 1e-12 floor), so along the increasing grid the loss falls, then rises:
    the first ``i`` whose next value is no lower is the (first) minimum. Each value is a softmax
    of the fit rows at one temperature; this evaluates 10 of 24.
    """
    at = cache(value)
    low, high = 0, count - 1
    while low < high:
        middle = (low + high) // 2
        if at(middle + 1) < at(middle):
            low = middle + 1
        else:
            high = middle
    return low


def _mean_of_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``x[rows].mean(axis=0, dtype=float64)`` to the last bit, without the copy: numpy sums
    along the first axis row after row, so each block continues the running sum."""
    total = np.zeros(x.shape[1])
    for block in _row_blocks(rows.size):
        total = np.add.reduce(np.concatenate([total[None], x[rows[block]].astype(np.float64)]), axis=0)
    return total / max(rows.size, 1)


def _temperature_rows(n: int) -> np.ndarray:
    """The training rows whose log loss picks the temperature: all of them up to
    :data:`TEMPERATURE_FIT_ROWS`, a fixed uniform sample above. The loss is an average, which a
    50,000-row sample pins down, while every row costs a softmax per candidate temperature
    (24 × a million rows × hundreds of classes per fold)."""
    if n <= TEMPERATURE_FIT_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=TEMPERATURE_FIT_ROWS, replace=False))


def _row_blocks(n: int, size: int = 16_384) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _log_loss_sum(logits: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(_softmax(logits)[np.arange(len(y)), y] + 1e-12).sum())


def knn_probabilities(graph, positions: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Similarity-weighted label votes of each row's labelled neighbours (self excluded), smoothed:
    ``(votes + 1/C) / (total + 1)``."""
    votes = np.zeros((positions.size, n_classes))
    add_knn_probabilities(votes, graph, positions, y, weight=1.0)
    return votes


def add_knn_probabilities(out: np.ndarray, graph, positions: np.ndarray, y: np.ndarray, *, weight: float) -> None:
    """``out += weight * knn_probabilities(...)``, to the last bit, block by block: the blend
    needs no second rows × classes matrix (2 GB at a million rows and 300 classes)."""
    n_classes = out.shape[1]
    label_at = np.full(graph.indices.shape[0], -1, dtype=np.int64)
    label_at[positions] = y
    for block in _row_blocks(positions.size):
        neighbours = graph.indices[positions[block]]
        weights = np.clip(graph.similarities[positions[block]].astype(np.float64), 0.0, None)
        votes = np.zeros((neighbours.shape[0], n_classes))
        if neighbours.size:
            neighbour_labels = np.where(neighbours >= 0, label_at[np.clip(neighbours, 0, None)], -1)
            valid = neighbour_labels >= 0
            owner = np.broadcast_to(np.arange(neighbours.shape[0])[:, None], neighbours.shape)
            np.add.at(votes, (owner[valid], neighbour_labels[valid]), weights[valid])
        totals = votes.sum(axis=1, keepdims=True) + 1.0
        votes += 1.0 / n_classes
        votes /= totals
        if weight != 1.0:
            votes *= weight
        out[block] += votes
