"""Bootstrap intervals and verdicts: every confirmation states how sure it is.

A difference between two groups of examples (flagged vs unflagged, model B vs model A on the
same rows) is only evidence when its interval excludes zero; with a handful of rows it rarely
does, and the table says *inconclusive* instead of pretending.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Verdict(str, Enum):
    """What one confirmation row concluded. The value is what ``summary.json`` stores in
    ``verdict``; why (when there is more to say) goes in ``verdict_note``, for people."""

    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not confirmed"
    INCONCLUSIVE = "inconclusive"
    #: The run trained too little for the claim to be measurable (not evidence either way).
    BUDGET_TOO_SMALL = "budget too small"

    def __str__(self) -> str:
        return self.value


CONFIRMED = Verdict.CONFIRMED
NOT_CONFIRMED = Verdict.NOT_CONFIRMED
INCONCLUSIVE = Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Interval:
    """A point estimate of ``mean(a) - mean(b)`` (or of mean(a) alone) and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    n_a: int
    n_b: int

    def as_dict(self) -> dict[str, float | int]:
        return {"effect": _round(self.estimate), "ci_low": _round(self.low), "ci_high": _round(self.high),
                "n_a": self.n_a, "n_b": self.n_b}


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def _clean(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def difference(a, b, *, seed: int = 0, n_resamples: int = 2000, confidence: float = 0.95) -> Interval:
    """Unpaired ``mean(a) - mean(b)`` with a percentile bootstrap interval (NaNs ignored)."""
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), int(a.size), int(b.size))
    rng = np.random.default_rng(seed)
    means_a = a[rng.integers(0, a.size, size=(n_resamples, a.size))].mean(axis=1)
    means_b = b[rng.integers(0, b.size, size=(n_resamples, b.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means_a - means_b, [tail, 1.0 - tail])
    return Interval(float(a.mean() - b.mean()), float(low), float(high), int(a.size), int(b.size))


def paired_difference(a, b, *, seed: int = 0, n_resamples: int = 2000, confidence: float = 0.95) -> Interval:
    """``mean(a - b)`` over rows where both are known: the same examples scored by two models."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    both = np.isfinite(a) & np.isfinite(b)
    deltas = a[both] - b[both]
    if deltas.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, 0)
    rng = np.random.default_rng(seed)
    means = deltas[rng.integers(0, deltas.size, size=(n_resamples, deltas.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(deltas.mean()), float(low), float(high), int(deltas.size), int(deltas.size))


def verdict(interval: Interval, *, expect_positive: bool = True, min_n: int = 5) -> Verdict:
    """*confirmed* when the interval lies on the predicted side of zero; *not confirmed* when the
    estimate is on the other side (or zero) with enough rows; *inconclusive* otherwise."""
    if min(interval.n_a, interval.n_b) < min_n or not np.isfinite(interval.estimate):
        return INCONCLUSIVE
    sign = 1.0 if expect_positive else -1.0
    if sign * interval.low > 0 and sign * interval.high > 0:
        return CONFIRMED
    if sign * interval.estimate <= 0:
        return NOT_CONFIRMED
    return INCONCLUSIVE
