import math

import pytest

from sparsegrow.runner import metrics as M

# R[i][j]: accuracy on experience j after training experience i (hand-made).
R = [[0.9, 0.1, 0.2],
     [0.6, 0.8, 0.3],
     [0.5, 0.7, 0.9]]


def test_metrics_on_a_known_matrix():
    assert M.final_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.9) / 3)
    # BWT: (0.5 − 0.9 + 0.7 − 0.8) / 2
    assert M.backward_transfer(R) == pytest.approx(-0.25)
    # Forgetting: j=0: max(0.9, 0.6) − 0.5 = 0.4; j=1: max(0.1, 0.8) − 0.7 = 0.1
    assert M.forgetting(R) == pytest.approx(0.25)
    assert M.learning_accuracy(R) == pytest.approx((0.9 + 0.8 + 0.9) / 3)
    assert M.seen_average(R) == pytest.approx([0.9, 0.7, 0.7])
    assert M.seen_accuracy(R[0], 0) == pytest.approx(0.9)     # a run's first row on its own


def test_metrics_after_each_experience_use_the_leading_block():
    after = M.after_each_experience(R)
    assert [a["experiences"] for a in after] == [1, 2, 3]
    assert after[0] == {"experiences": 1, "acc": 0.9, "bwt": None, "forgetting": None,
                        "la": 0.9}
    # first two experiences: R[1][:2] = [0.6, 0.8]
    assert after[1]["acc"] == pytest.approx(0.7)
    assert after[1]["bwt"] == pytest.approx(0.6 - 0.9)
    assert after[1]["forgetting"] == pytest.approx(0.9 - 0.6)
    assert after[1]["la"] == pytest.approx(0.85)
    assert after[2]["acc"] == M.final_accuracy(R) and after[2]["bwt"] == M.backward_transfer(R)
    assert M.after_each_experience([[0.9, 0.8]]) == []


def test_forgetting_uses_rows_before_the_last_only():
    # the max over l < T excludes the final row, even when it is the highest
    assert M.forgetting([[0.2, 0.0], [0.9, 0.5]]) == pytest.approx(0.2 - 0.9)


def test_joint_final_row_only():
    row = [[0.9, 0.8, 0.7]]
    assert M.final_accuracy(row) == pytest.approx(0.8)
    assert M.backward_transfer(row) is None
    assert M.forgetting(row) is None
    assert M.learning_accuracy(row) is None
    assert M.seen_average(row) == pytest.approx([0.8])


def test_overhead_gift_and_mean_std():
    assert M.parameter_overhead(1000, 2500) == pytest.approx(1.5)
    assert M.gift_at_growth([0.02, 0.0, -0.01]) == pytest.approx(0.01 / 3)
    assert M.gift_at_growth([]) is None
    mean, std = M.mean_std([0.5, 0.7, None, math.nan])
    assert mean == pytest.approx(0.6) and std == pytest.approx(math.sqrt(0.02))
    assert M.mean_std([0.3]) == (0.3, 0.0)
    assert M.mean_std([None]) == (None, None)
