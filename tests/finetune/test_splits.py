import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dataaudit.finetune.splits import heldout_split, kept_in_training, stratified_sample


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=200), st.floats(0.05, 0.95), st.integers(0, 99))
def test_split_partitions_rows_and_holds_out_per_stratum(strata, fraction, seed):
    rows = np.arange(len(strata)) * 3
    split = heldout_split(rows, np.array(strata), fraction=fraction, seed=seed)
    assert sorted(np.concatenate([split.train, split.heldout]).tolist()) == rows.tolist()
    assert not set(split.train.tolist()) & set(split.heldout.tolist())
    for key in set(strata):
        members = rows[np.array(strata) == key]
        held = np.isin(members, split.heldout).sum()
        expected = round(len(members) * fraction) if len(members) > 1 else 0
        assert held == expected
    again = heldout_split(rows, np.array(strata), fraction=fraction, seed=seed)
    assert np.array_equal(again.heldout, split.heldout)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 8), min_size=1, max_size=300), st.integers(1, 300), st.integers(0, 99))
@example(strata=[0, 1, 2, 2, 2, 2], size=3, seed=0)  # one row each to spare: the cut must spare singletons
def test_sample_has_the_requested_size_and_keeps_every_stratum_when_it_can(strata, size, seed):
    strata = np.array(strata)
    rows = np.arange(len(strata))
    picked = stratified_sample(rows, strata, size, seed=seed)
    assert len(picked) == min(size, len(rows))
    assert len(set(picked.tolist())) == len(picked)
    if size >= len(set(strata.tolist())):
        assert set(strata[picked].tolist()) == set(strata.tolist())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=120), st.sets(st.integers(0, 400)), st.integers(0, 99))
def test_kept_in_training_moves_only_held_out_rows_and_still_partitions(strata, keep, seed):
    rows = np.arange(len(strata)) * 3
    split = heldout_split(rows, np.array(strata), fraction=0.3, seed=seed)
    kept = kept_in_training(split, np.array(sorted(keep), dtype=np.int64))
    assert sorted(np.concatenate([kept.train, kept.heldout]).tolist()) == rows.tolist()
    assert not set(kept.heldout.tolist()) & keep  # every such row trains ...
    assert set(kept.heldout.tolist()) == set(split.heldout.tolist()) - keep  # ... and nothing else moves
