import numpy as np
import pytest

from dataaudit.finetune.dynamics import AMBIGUOUS, EASY, HARD, data_map


def test_regions_follow_confidence_and_variability():
    # rows 0-5 learnt at once, 6-8 flip-flop, 9 never learnt
    confidence = np.array([
        [0.9] * 6 + [0.1, 0.9, 0.2] + [0.05],
        [0.95] * 6 + [0.9, 0.1, 0.8] + [0.04],
        [0.97] * 6 + [0.2, 0.8, 0.1] + [0.06],
    ])
    frame = data_map(np.arange(10), confidence)
    regions = frame.get_column("region").to_list()
    assert regions[9] == HARD
    assert set(regions[6:9]) == {AMBIGUOUS}
    assert regions.count(EASY) >= 4
    assert frame.get_column("confidence")[0] == pytest.approx(np.mean([0.9, 0.95, 0.97]))
    assert {"confidence_epoch_1", "confidence_epoch_3"} <= set(frame.columns)


def test_single_epoch_uses_confidence_only():
    frame = data_map(np.arange(6), np.array([[0.9, 0.8, 0.1, 0.95, 0.85, 0.05]]))
    assert frame.get_column("region").to_list()[2] == HARD
    assert AMBIGUOUS not in frame.get_column("region").to_list()


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        data_map(np.arange(3), np.zeros((2, 4)))


def test_empty_map():
    assert data_map(np.arange(0), np.zeros((2, 0))).height == 0
