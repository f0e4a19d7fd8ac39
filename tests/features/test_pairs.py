"""Candidate pairs from a kNN graph and the groups they link."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.pairs import candidate_pairs, connected_groups


def test_candidate_pairs_are_unordered_unique_and_above_threshold():
    indices = np.array([[1, 2], [0, 2], [0, 1]])
    similarities = np.array([[0.95, 0.5], [0.97, 0.91], [0.5, 0.91]], dtype=np.float32)
    pairs = candidate_pairs(indices, similarities, 0.9)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 2)]
    assert abs(pairs[0][2] - 0.97) < 1e-6  # the higher of the two directions


def test_candidate_pairs_of_an_empty_graph():
    assert candidate_pairs(np.zeros((3, 0), dtype=np.int64), np.zeros((3, 0), dtype=np.float32), 0.5) == []
    assert candidate_pairs(np.array([[1], [0]]), np.array([[0.2], [0.2]], dtype=np.float32), 0.5) == []


def test_connected_groups_are_transitive_and_sorted():
    assert connected_groups(6, [(4, 5), (1, 4), (2, 3)]) == [[1, 4, 5], [2, 3]]
    assert connected_groups(3, []) == []
    assert connected_groups(0, []) == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=20))
def test_connected_groups_partition_the_linked_rows(pairs):
    groups = connected_groups(10, pairs)
    members = [row for group in groups for row in group]
    assert len(members) == len(set(members))
    where = {row: k for k, group in enumerate(groups) for row in group}
    for a, b in pairs:
        if a != b:
            assert where[a] == where[b]
    assert all(group == sorted(group) and len(group) >= 2 for group in groups)
