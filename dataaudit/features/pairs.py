"""Row pairs and the groups they link: candidate pairs from a kNN graph, connected groups.

The duplicate and conflict checks both shortlist pairs by embedding similarity, confirm
some of them, and group rows transitively over the confirmed pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

__all__ = ["candidate_pair_arrays", "candidate_pairs", "connected_groups", "group_labels", "pair_column", "value_codes"]


def candidate_pairs(indices: np.ndarray, similarities: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Unordered neighbour pairs ``(i, j, similarity)`` with i < j and similarity ≥ ``threshold``.

    Each pair appears once (a pair found from both ends keeps the higher similarity), in
    ascending (i, j) order, so callers iterate deterministically.
    """
    low, high, similarity = candidate_pair_arrays(indices, similarities, threshold)
    return [(int(i), int(j), float(s)) for i, j, s in zip(low, high, similarity)]


def candidate_pair_arrays(indices: np.ndarray, similarities: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`candidate_pairs` as three arrays (``low``, ``high``, ``similarity``): no tuple per pair."""
    empty = np.zeros(0, dtype=np.int64)
    if indices.size == 0:
        return empty, empty, np.zeros(0)
    source, slot = np.nonzero(similarities >= threshold)
    target = indices[source, slot]
    valid = (target >= 0) & (target != source)
    if not valid.any():
        return empty, empty, np.zeros(0)
    low = np.minimum(source[valid], target[valid]).astype(np.int64)
    high = np.maximum(source[valid], target[valid]).astype(np.int64)
    similarity = similarities[source[valid], slot[valid]].astype(np.float64)
    order = np.lexsort((-similarity, high, low))
    low, high, similarity = low[order], high[order], similarity[order]
    first = np.ones(low.size, dtype=bool)
    first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    return low[first], high[first], similarity[first]


def group_labels(size: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Connected-component label of every row over the pairs, -1 for rows in no pair.

    Components are labelled by their lowest row, as :func:`connected_groups` orders them; one
    scipy call instead of a Python union-find over a million rows.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels = np.full(size, -1, dtype=np.int64)
    if not len(first):
        return labels
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    lowest = np.full(component.max() + 1, size, dtype=np.int64)
    np.minimum.at(lowest, component, np.arange(size))
    paired = np.zeros(size, dtype=bool)
    paired[first] = paired[second] = True
    labels[paired] = lowest[component[paired]]
    return labels


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


def value_codes(values: list) -> np.ndarray:
    """A small integer per distinct value (first seen first), so equality over pairs is an array comparison."""
    seen: dict = {}
    return np.fromiter((seen.setdefault(value, len(seen)) for value in values), dtype=np.int64, count=len(values))


def pair_column(frame: "pl.DataFrame", *, function: Callable[[Any, Any], Any], name: str,
                dtype: "pl.DataType") -> "pl.DataFrame":
    """``function(first, second)`` of each row's ``first`` and ``second`` values, as one column.

    The unit of pair work the checks send to the engine's ``map_frame`` (word diffs, light edits).
    """
    import polars as pl

    pairs = zip(frame.get_column("first").to_list(), frame.get_column("second").to_list())
    return pl.DataFrame({name: [function(a, b) for a, b in pairs]}, schema={name: dtype})
