"""Dataset Cartography (Swayamdipta et al., 2020): where each training example sits on the data map.

The model's confidence in an example's *own* target, tracked across epochs, separates examples
it learns at once (easy), examples it flips on (ambiguous, high variability) and examples it
never comes to believe (hard to learn) — where mislabelled and contradictory rows gather.
Regions are relative to this run (a variability quantile, a fraction of the median
confidence), so they mean the same for a classifier's probabilities and a language model's
per-token probabilities.
"""

from __future__ import annotations

import numpy as np
import polars as pl

EASY = "easy-to-learn"
AMBIGUOUS = "ambiguous"
HARD = "hard-to-learn"


def data_map(rows: np.ndarray, confidence: np.ndarray, *, margin: np.ndarray | None = None,
             ambiguous_quantile: float = 0.67, hard_fraction_of_median: float = 0.5) -> pl.DataFrame:
    """One row per training example: ``confidence`` (mean over epochs), ``variability`` (std),
    ``aum`` (mean of ``margin`` over epochs, Pleiss et al. 2020; NaN without margins), ``region``.

    ``confidence`` is ``(epochs, n)``. Ambiguous = variability above its ``ambiguous_quantile``
    (the paper's "top third most variable"); of the rest, hard-to-learn = mean confidence below
    ``hard_fraction_of_median`` times the median example's — the model never came to believe
    them while it believed a typical example; everything else is easy-to-learn. With a single
    epoch variability is zero and only confidence separates the regions.
    """
    confidence = np.atleast_2d(np.asarray(confidence, dtype=np.float64))
    if confidence.shape[1] != len(rows):
        raise ValueError("confidence must be (epochs, rows)")
    mean = confidence.mean(axis=0) if confidence.size else np.zeros(len(rows))
    spread = confidence.std(axis=0) if confidence.size else np.zeros(len(rows))
    region = np.full(len(rows), EASY, dtype=object)
    if len(rows):
        ambiguous = spread > np.quantile(spread, ambiguous_quantile)
        hard = ~ambiguous & (mean < hard_fraction_of_median * np.median(mean))
        region[ambiguous] = AMBIGUOUS
        region[hard] = HARD
    return pl.DataFrame({
        "row": np.asarray(rows, dtype=np.int64),
        "confidence": mean,
        "variability": spread,
        "aum": (np.nanmean(np.atleast_2d(margin), axis=0) if margin is not None and np.size(margin)
                else np.full(len(rows), np.nan)),
        "region": region.tolist(),
        **{f"confidence_epoch_{e + 1}": confidence[e] for e in range(confidence.shape[0])},
    }, schema_overrides={"region": pl.String})
