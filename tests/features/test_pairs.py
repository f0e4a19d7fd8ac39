"""Candidate pairs from a kNN graph and the groups they link."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.features.pairs import candidate_pairs, connected_groups, pair_column


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


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(0, 14)), max_size=30))
def test_group_labels_match_connected_groups(pairs):
    from dataaudit.features.pairs import group_labels

    first = np.array([a for a, _ in pairs], dtype=np.int64)
    second = np.array([b for _, b in pairs], dtype=np.int64)
    labels = group_labels(15, first, second)
    expected = np.full(15, -1)
    for group in connected_groups(15, pairs):
        expected[group] = group[0]
    # A self-pair makes no group for connected_groups; group_labels marks such a row as its own.
    alone = [row for row in range(15) if row not in {r for p in pairs for r in p if p[0] != p[1]}]
    labels[alone] = -1
    expected[alone] = -1
    assert labels.tolist() == expected.tolist()


def test_candidate_pair_arrays_equal_the_tuples():
    from dataaudit.features.pairs import candidate_pair_arrays

    rng = np.random.default_rng(0)
    indices = rng.integers(-1, 20, size=(20, 5))
    similarities = rng.random((20, 5))
    low, high, similarity = candidate_pair_arrays(indices, similarities, 0.3)
    assert list(zip(low.tolist(), high.tolist(), similarity.tolist())) == candidate_pairs(indices, similarities, 0.3)


def test_pair_column_applies_the_function_to_each_rows_pair_and_keeps_nulls():
    import polars as pl

    frame = pl.DataFrame({"first": ["ab", "x", ""], "second": ["ab", "yy", "z"]})
    out = pair_column(frame, function=lambda a, b: len(a + b) if a else None, name="n", dtype=pl.Int64)
    assert out.schema == {"n": pl.Int64} and out.get_column("n").to_list() == [4, 3, None]
