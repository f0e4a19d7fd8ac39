"""Which rows train and which are held out — the same for every experiment of a run.

Held-out rows are drawn per cluster so every topic the audit found is represented in both
halves; a random split of a skewed set can leave a small cluster entirely on one side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    heldout: np.ndarray


def stratified_sample(rows: np.ndarray, strata: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """At most ``size`` rows, each stratum keeping its share (at least one row per stratum when
    there is room); sorted, deterministic for a seed."""
    rows = np.asarray(rows, dtype=np.int64)
    if size >= len(rows):
        return np.sort(rows)
    rng = np.random.default_rng(seed)
    strata = np.asarray(strata)
    keys, inverse = np.unique(strata, return_inverse=True)
    quota = np.floor(np.bincount(inverse, minlength=len(keys)) * size / len(rows)).astype(int)
    if len(keys) <= size:
        quota = np.maximum(quota, 1)
        # The floor of one can overshoot: take the excess from the biggest quotas, never from a
        # stratum's last row (a random cut dropped the singleton of [0, 1, 2, 2, 2, 2] → 3).
        for _ in range(int(quota.sum()) - size):
            quota[int(np.argmax(quota))] -= 1
    chosen: list[np.ndarray] = []
    leftovers: list[np.ndarray] = []
    for index in range(len(keys)):
        members = rng.permutation(rows[inverse == index])
        chosen.append(members[: quota[index]])
        leftovers.append(members[quota[index]:])
    picked = np.concatenate(chosen)
    if len(picked) < size:
        rest = rng.permutation(np.concatenate(leftovers))
        picked = np.concatenate([picked, rest[: size - len(picked)]])
    return np.sort(picked)


def heldout_split(rows: np.ndarray, strata: np.ndarray, *, fraction: float, seed: int) -> Split:
    """Hold out ``fraction`` of each stratum (rounded; strata of one row stay in training)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("held-out fraction must be between 0 and 1")
    rows = np.asarray(rows, dtype=np.int64)
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    heldout: list[np.ndarray] = []
    for key in np.unique(strata):
        members = rng.permutation(rows[strata == key])
        count = int(round(len(members) * fraction)) if len(members) > 1 else 0
        heldout.append(members[:count])
    held = np.sort(np.concatenate(heldout)) if heldout else np.zeros(0, np.int64)
    return Split(train=np.setdiff1d(rows, held), heldout=held)


def kept_in_training(split: Split, rows: np.ndarray) -> Split:
    """``split`` with those of ``rows`` it holds out moved into training."""
    moved = np.intersect1d(split.heldout, np.asarray(rows, dtype=np.int64))
    return Split(train=np.union1d(split.train, moved), heldout=np.setdiff1d(split.heldout, moved))
