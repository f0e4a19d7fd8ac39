"""One gap decision, calibrated as a whole: the share of in-distribution rows flagged is ``alpha``.

Each signal says on its own scale how uncovered a production row is (lower = less covered):

- ``density+labels``: the density and label scores combined by Fisher's method and calibrated
  on training (:func:`~dataaudit.coverage.labels.combined_gap_score`);
- ``crowding``: the binomial tail of how many production rows crowd the row's neighbourhood
  (:mod:`dataaudit.coverage.crowding`).

Calibrated one by one and joined by *or*, each spends the whole rate, so the union flags more
in-distribution rows than any one promises (8.4% of CLINC150's in-scope rows at a "5%" rule).
Here they become one statistic, a weighted minimum (Bonferroni's rule with weights):
``min(density+labels, crowding · alpha / crowding_alpha)``, so crowding alone flags a row
near ``crowding_alpha``. The threshold on it is split-conformal: training rows *held out from
the reference* are scored against the rest exactly as production is scored against training,
and a production row's ``gap_score`` is its conformal p-value,
``(1 + #{held-out rows at most as covered}) / (m + 1)``. A row is a gap when it is at most
``alpha``. If production is drawn like training, a production row is then flagged with
probability at most ``alpha`` (Vovk et al.; at least ``alpha - 1/(m + 1)`` without ties), for
any ``m``; the rows every signal adds are counted, not assumed.

Training rows are held out *with their copies* (rows linked at cosine ``group_similarity`` or more,
chained; default 0.98, the same request typed again, which crowding also counts once), so a
held-out row never finds itself in the reference. Production collected apart from training
(CLINC150's test split) is less covered than any training row held out at random, so it is
flagged above the rate asked for (8.3% at 5%). Holding near-paraphrases out together for the
density and label scores (``group_similarity=0.85``) fits that case: 2.3% / 5.9% / 11.1% of
CLINC150's in-scope test prompts at 2% / 5% / 10%, 91.0% of out-of-scope caught at 5%. Crowding
is then calibrated on the same held-out rows dealt into folds that keep only copies together
(``crowding_group_similarity``): a held-out burst of paraphrases crowds itself, which no covered
production row does (grouped for crowding too, only 49.5% of out-of-scope prompts were flagged).
It is not the default: where production *is* drawn like training, held-out paraphrase groups
look less covered than production, and the rate falls below the one asked for (Banking77 with
10 intents removed: 2.9-3.4% of kept-intent rows flagged at 5%, and 7 / 9 / 6 of 10 removed
intents surfaced on seeds 0-2 against 10 / 10 / 7 with copies; on synthetic in-distribution
mixtures whose chains join whole topics, nothing at all). bench/bench_coverage_clinc.py and
bench/bench_coverage_banking.py, variant ``apart``.

When training is small, one held-out split leaves few rows to calibrate on, so the held-out
rows are cross-conformal: several folds, each held out from the rest in turn, pooled (every
training row calibrates once, up to ``max_rows``). Production itself is scored against all of
training, a reference larger by the held-out share; that can only make it look better covered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def calibration_folds(n: int, *, share: float, max_rows: int, min_rows: int, seed: int,
                      groups: np.ndarray | None = None) -> np.ndarray:
    """A fold number per training row (-1 = not held out), seeded.

    One split of ``share · n`` rows (at most ``max_rows``) when that is at least ``min_rows``
    (split-conformal); otherwise up to ``min(n, max_rows)`` rows over as many folds of
    ``share · n`` rows as that takes (cross-conformal). ``groups``: a group id per row (rows of
    one group are held out together; default: every row its own). A fold never holds out every
    row but one; where a group is that large, rows are held out one by one instead.
    """
    fold_of = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return fold_of
    per_fold = max(1, min(round(share * n), max_rows, n - 1))
    rows = per_fold if per_fold >= min_rows else min(n, max_rows)
    if rows == n and per_fold == n:
        per_fold = n - 1
    fold_of = _dealt(np.arange(n) if groups is None else groups, per_fold=per_fold, rows=rows,
                     rng=np.random.default_rng(seed))
    if groups is not None and np.bincount(fold_of[fold_of >= 0]).max(initial=0) > n - 2:
        return calibration_folds(n, share=share, max_rows=max_rows, min_rows=min_rows, seed=seed)
    return _renumbered(fold_of)


def fold_masks(fold_of: np.ndarray, n: int):
    """Yield each fold's held-out mask, skipping a fold that would leave fewer than 2 rows."""
    for fold in range(int(fold_of.max()) + 1):
        held = fold_of == fold
        if n - int(held.sum()) >= 2:
            yield held


def regrouped_folds(fold_of: np.ndarray, groups: np.ndarray, *, seed: int) -> np.ndarray:
    """The rows ``fold_of`` holds out, dealt again into as many folds, keeping ``groups`` together.

    Same rows, same fold sizes (up to a group), other company: the crowding calibration holds
    out copies together but not near-paraphrases (see the module docstring).
    """
    held = np.flatnonzero(fold_of >= 0)
    regrouped = np.full(len(fold_of), -1, dtype=np.int64)
    if held.size == 0:
        return regrouped
    folds = int(fold_of.max()) + 1
    per_fold = -(-held.size // folds)
    dealt = _dealt(np.asarray(groups)[held], per_fold=per_fold, rows=held.size, rng=np.random.default_rng(seed + 1))
    regrouped[held] = np.minimum(dealt, folds - 1)
    return _renumbered(regrouped)


def _dealt(groups: np.ndarray, *, per_fold: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Deal whole groups, in a seeded order, into folds of ``per_fold`` rows until ``rows`` rows are dealt.

    A fold number per row; -1 for the rows of groups dealt after the first ``rows``.
    """
    ids, group_of, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = rng.permutation(len(ids))
    before = np.cumsum(sizes[order]) - sizes[order]  # rows dealt before each group, in this order
    group_fold = np.full(len(ids), -1, dtype=np.int64)
    taken = before < rows
    group_fold[order[taken]] = before[taken] // per_fold
    return group_fold[group_of.ravel()]


def _renumbered(fold_of: np.ndarray) -> np.ndarray:
    """Folds numbered 0.. without gaps (a large group can swallow a fold's number)."""
    used = np.unique(fold_of[fold_of >= 0])
    return np.where(fold_of >= 0, np.searchsorted(used, fold_of), -1)


def near_copy_groups(graph, similarity: float) -> np.ndarray:
    """A group id per training row: rows linked (directly or through a chain) by kNN neighbours at
    least ``similarity`` alike share one; a row with none is its own group."""
    from dataaudit.features.pairs import group_labels

    n = len(graph.indices)
    row, column = np.nonzero((graph.indices >= 0) & (graph.similarities >= similarity))
    labels = group_labels(n, row, graph.indices[row, column])
    return np.where(labels >= 0, labels, n + np.arange(n))


def combined_statistic(density_labels: np.ndarray, crowding: np.ndarray, similarity: np.ndarray, *,
                       crowding_weight: float) -> np.ndarray:
    """``min(density_labels, crowding / crowding_weight)``; a NaN signal says nothing (counts as 1).

    ``crowding_weight`` 0 leaves crowding out. NaN where every signal is NaN. Ties are broken by
    ``similarity`` to the nearest training row (a term below 1e-8): the calibrated scores stop at
    0 below every training row, and a row in another language must still rank below a held-out
    paraphrase that is merely new."""
    dl = np.asarray(density_labels, dtype=np.float64)
    statistic = np.where(np.isnan(dl), 1.0, dl)
    missing = np.isnan(dl)
    if crowding_weight > 0:
        crowded = np.asarray(crowding, dtype=np.float64) / crowding_weight
        statistic = np.minimum(statistic, np.where(np.isnan(crowded), 1.0, crowded))
        missing &= np.isnan(crowded)
    tie_break = 1e-9 * (np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=-1.0) - 1.0)
    return np.where(missing, np.nan, statistic + tie_break)


def conformal_p_values(calibration: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(1 + #{calibration <= value}) / (m + 1)`` per value (NaN stays NaN; no calibration: NaN)."""
    ordered = np.sort(np.asarray(calibration, dtype=np.float64)[~np.isnan(calibration)])
    values = np.asarray(values, dtype=np.float64)
    if ordered.size == 0:
        return np.full(values.shape, np.nan)
    p = (1 + np.searchsorted(ordered, values, side="right")) / (ordered.size + 1)
    return np.where(np.isnan(values), np.nan, p)


@dataclass(frozen=True)
class GapCalibration:
    """The calibrated decision: rows whose conformal p-value is at most ``alpha`` are gaps."""

    alpha: float
    statistic: float | None  # the combined statistic below which a row is a gap (None: no row can be)
    calibration_rows: int
    folds: int
    held_out_flagged: int  # held-out rows below ``statistic``
    held_out: np.ndarray  # the held-out rows' combined statistics, sorted (what p-values count)

    @classmethod
    def fit(cls, calibration: np.ndarray, fold_count: int, *, alpha: float) -> "GapCalibration":
        values = np.sort(np.asarray(calibration, dtype=np.float64)[~np.isnan(calibration)])
        m = values.size
        # p(u) = (1 + #{held-out <= u}) / (m + 1) <= alpha  <=>  u is below the rank-th smallest held-out value
        rank = math.floor(alpha * (m + 1))
        statistic = float(values[rank - 1]) if rank >= 1 else None
        flagged = int((values < statistic).sum()) if statistic is not None else 0
        return cls(alpha=alpha, statistic=statistic, calibration_rows=int(m), folds=fold_count, held_out_flagged=flagged,
                   held_out=values)

    @property
    def method(self) -> str:
        return "split-conformal" if self.folds == 1 else "cross-conformal"

    def as_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "conformal": self.method,
            "statistic": None if self.statistic is None else round(self.statistic, 6),
            "calibration_rows": self.calibration_rows,
            "folds": self.folds,
            "held_out_flagged_share": round(self.held_out_flagged / self.calibration_rows, 4) if self.calibration_rows else None,
            "smallest_possible_p": round(1 / (self.calibration_rows + 1), 6),
        }
