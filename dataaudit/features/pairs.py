"""Row pairs and the groups they link: candidate pairs from a kNN graph, connected groups.

The duplicate and conflict checks both shortlist pairs by embedding similarity, confirm
some of them, and group rows transitively over the confirmed pairs.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["candidate_pairs", "connected_groups"]


def candidate_pairs(indices: np.ndarray, similarities: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Unordered neighbour pairs ``(i, j, similarity)`` with i < j and similarity ≥ ``threshold``.

    Each pair appears once (a pair found from both ends keeps the higher similarity), in
    ascending (i, j) order, so callers iterate deterministically.
    """
    if indices.size == 0:
        return []
    source, slot = np.nonzero(similarities >= threshold)
    target = indices[source, slot]
    valid = (target >= 0) & (target != source)
    if not valid.any():
        return []
    low = np.minimum(source[valid], target[valid]).astype(np.int64)
    high = np.maximum(source[valid], target[valid]).astype(np.int64)
    similarity = similarities[source[valid], slot[valid]].astype(np.float64)
    order = np.lexsort((-similarity, high, low))
    low, high, similarity = low[order], high[order], similarity[order]
    first = np.ones(low.size, dtype=bool)
    first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    return [(int(i), int(j), float(s)) for i, j, s in zip(low[first], high[first], similarity[first])]


def connected_groups(size: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Groups of two or more rows linked directly or transitively by ``pairs``.

    Union-find with the lowest index as root; groups come sorted by their first row and
    list their members in ascending order.
    """
    parent = list(range(size))

    def find(index: int) -> int:
        root = index
        while parent[root] != root:
            root = parent[root]
        while parent[index] != root:
            parent[index], index = root, parent[index]
        return root

    for a, b in pairs:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    members: dict[int, list[int]] = {}
    for index in range(size):
        members.setdefault(find(index), []).append(index)
    return [group for _, group in sorted(members.items()) if len(group) > 1]
