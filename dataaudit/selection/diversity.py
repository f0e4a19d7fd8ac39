"""Budget arithmetic for selection: cluster quotas, and diverse picks inside one cluster.

Quotas split the budget over clusters by weight with the largest-remainder method, never giving
a cluster more than it holds (the surplus goes to the others, again by weight), so the quotas add
up to the budget exactly. Inside a cluster, facility location (maximise the summed similarity of
every row to its closest pick) chooses rows that *represent* the cluster; k-center would chase
its outliers, which in audited data are more often the odd rows than the informative ones.
Greedy maximisation is the standard (1 − 1/e) approximation; the "stochastic greedy" variant
(Mirzasoleiman et al., AAAI 2015) evaluates a random sample of ``(n / k) · ln(1/ε)`` candidates
per pick, so a cluster costs about ``n · ln(1/ε)`` gain evaluations instead of ``n · k``.
"""

from __future__ import annotations

import numpy as np

#: Rows a cluster's similarity matrix is computed against (the "demand" side); a larger cluster
#: is represented by a seeded sample of this many rows, which bounds memory at n x 2048 floats.
MAX_DEMAND = 2048
#: Above this many similarity entries (rows x demand, 256 MB of float32) a cluster's similarities
#: are computed per pick for the sampled candidates instead of once for all rows: memory stays
#: bounded for a cluster of a million rows, at about ln(1/ε) times the arithmetic.
DENSE_LIMIT = 64 << 20
#: Stochastic greedy's ε: each pick is within (1 − 1/e − ε) of the greedy optimum in expectation.
EPSILON = 0.01


def allocate(budget: int, weights: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Split ``budget`` (≤ ``capacity.sum()``) into integer quotas proportional to ``weights``.

    Each quota is at most its ``capacity``. Ties in the remainders go to the lower index.
    """
    weights = np.asarray(weights, dtype=np.float64).copy()
    capacity = np.asarray(capacity, dtype=np.int64)
    if budget > int(capacity.sum()):
        raise ValueError(f"budget {budget} exceeds the capacity {int(capacity.sum())}")
    quota = np.zeros(len(capacity), dtype=np.int64)
    weights[capacity == 0] = 0.0
    remaining = budget
    while remaining > 0:
        open_ = quota < capacity
        share = np.where(open_, weights, 0.0)
        if share.sum() <= 0:  # weight only on full clusters: spread the rest evenly over the open ones
            share = open_.astype(np.float64)
        ideal = remaining * share / share.sum()
        extra = np.floor(ideal).astype(np.int64)
        short = remaining - int(extra.sum())
        if short:
            order = np.lexsort((np.arange(len(ideal)), -(ideal - extra)))
            order = order[open_[order]]
            extra[order[:short]] += 1
        extra = np.minimum(extra, capacity - quota)
        quota += extra
        remaining = budget - int(quota.sum())
        weights = np.where(quota < capacity, weights, 0.0)
    return quota


def facility_location(vectors: np.ndarray, k: int, *, seed: int | np.random.SeedSequence, epsilon: float = EPSILON,
                      max_demand: int = MAX_DEMAND, dense_limit: int = DENSE_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` positions into ``vectors`` (unit rows) greedily, returning each pick's marginal gain.

    The gain is the mean increase in every row's similarity to its closest pick (non-increasing up
    to the sampling noise). Deterministic for ``seed``.
    """
    n = len(vectors)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    rng = np.random.default_rng(seed)
    demand = vectors if n <= max_demand else vectors[np.sort(rng.choice(n, size=max_demand, replace=False))]
    # Similarity shifted to [0, 2] so "no pick yet" (0) is below every real similarity.
    dense = (vectors @ demand.T).astype(np.float32) + 1.0 if n * len(demand) <= dense_limit else None

    def similarity(rows: np.ndarray) -> np.ndarray:
        return dense[rows] if dense is not None else (vectors[rows] @ demand.T).astype(np.float32) + 1.0

    covered = np.zeros(len(demand), dtype=np.float32)
    available = np.ones(n, dtype=bool)
    sample_size = max(1, int(np.ceil(n / k * np.log(1 / epsilon))))
    picks = np.zeros(k, dtype=np.int64)
    gains = np.zeros(k)
    for step in range(k):
        open_rows = np.flatnonzero(available)
        candidates = open_rows if len(open_rows) <= sample_size else rng.choice(open_rows, size=sample_size,
                                                                                 replace=False)
        gain = np.maximum(similarity(candidates) - covered, 0.0).sum(axis=1)
        best = int(np.argmax(gain))
        pick = int(candidates[best])
        picks[step], gains[step] = pick, float(gain[best]) / len(demand)
        covered = np.maximum(covered, similarity(np.array([pick]))[0])
        available[pick] = False
    return picks, gains
