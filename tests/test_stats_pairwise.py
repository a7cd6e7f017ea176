"""Pairwise statistics against values computed by hand."""

import math

import pytest

from evalhub.stats.pairwise import (ItemVerdicts, bootstrap_ci, canary_accuracy, combine_orders, lc_win_rate,
                                    length_correlation, pairwise_stats, position_consistency, sign_test, wilson_ci,
                                    win_rate)


def test_orders_combine_into_one_item_verdict():
    assert combine_orders("win", "win") == "win"
    assert combine_orders("loss", "loss") == "loss"
    assert combine_orders("tie", "tie") == "tie"
    assert combine_orders("win", "loss") == "tie"   # the judge followed the position, not the answer
    assert combine_orders("win", "tie") == "tie"
    assert combine_orders("win", None) is None       # one order unreadable: the item is not scored
    assert combine_orders(None, None) is None


def _items(spec):
    """spec: (first, second, tuned_length, base_length) per item."""
    return [ItemVerdicts(f"i{n}", a, b, lt, lb) for n, (a, b, lt, lb) in enumerate(spec)]


# 6 wins, 2 losses, 1 agreed tie, 1 tie by disagreement, 1 unscored item.
EXAMPLE = _items([("win", "win", 10, 10)] * 6 + [("loss", "loss", 10, 10)] * 2
                 + [("tie", "tie", 10, 10), ("win", "loss", 10, 10), ("win", None, 10, 10)])


def test_counts_win_rate_and_sign_test_match_hand_computation():
    stats = pairwise_stats(EXAMPLE)
    assert (stats["n"], stats["wins"], stats["losses"], stats["ties"]) == (11, 6, 2, 2)
    assert (stats["scored"], stats["unscored"]) == (10, 1)
    assert stats["win_rate"] == pytest.approx((6 + 0.5 * 2) / 10)            # 0.7
    # Two-sided exact sign test on 6 wins of 8 signed items: 2 * (C(8,6)+C(8,7)+C(8,8)) / 2^8 = 74/256.
    assert stats["p_value"] == pytest.approx(74 / 256)
    # 9 of the 10 items with both orders read agree (the win/loss one does not).
    assert stats["position_consistency"] == pytest.approx(0.9)
    # Equal lengths everywhere: no length signal, so the LC win rate is the win rate.
    assert stats["lc_win_rate"] == pytest.approx(0.7, abs=1e-6)
    assert stats["length_correlation"] is None


def test_wilson_interval_matches_the_formula_by_hand():
    # p = 0.7, n = 10, z = 1.959964: centre = (p + z²/2n) / (1 + z²/n) = 0.644493,
    # half width = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²) = 0.247715.
    lo, hi = wilson_ci(6, 2, 2)
    assert lo == pytest.approx(0.644493 - 0.247715, abs=1e-5)
    assert hi == pytest.approx(0.644493 + 0.247715, abs=1e-5)
    assert wilson_ci(0, 0, 0) is None
    assert wilson_ci(10, 0, 0)[1] == pytest.approx(1.0)


def test_bootstrap_interval_is_reproducible_and_agrees_with_wilson_on_many_items():
    scores = [1.0] * 280 + [0.0] * 80 + [0.5] * 40   # win rate 0.75 on 400 items
    first = bootstrap_ci(scores, seed=3)
    assert first == bootstrap_ci(scores, seed=3)
    lo, hi = first
    assert lo < 0.75 < hi
    wilson = wilson_ci(280, 80, 40)
    assert abs(lo - wilson[0]) < 0.015 and abs(hi - wilson[1]) < 0.015
    assert bootstrap_ci([1.0, 1.0, 1.0]) == [1.0, 1.0]
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([0.0]) is None  # one item: no spread to estimate, not a certain [0, 0]


def test_sign_test_edges():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == pytest.approx(1.0)
    assert sign_test(10, 0) == pytest.approx(2 / 2 ** 10)


def test_win_rate_of_nothing_is_none():
    assert win_rate(0, 0, 0) is None
    stats = pairwise_stats(_items([(None, "win", 1, 1)]))
    assert stats["scored"] == 0 and stats["unscored"] == 1
    assert stats["win_rate"] is None and stats["win_rate_ci"] is None and stats["lc_win_rate"] is None
    assert stats["position_consistency"] is None


def test_position_consistency_catches_a_judge_that_always_picks_answer_a():
    # Tuned at A wins, tuned at B loses, on every item: the judge reads positions only.
    items = _items([("win", "loss", 5, 5)] * 8)
    assert position_consistency(items) == 0.0
    stats = pairwise_stats(items)
    assert stats["ties"] == 8 and stats["win_rate"] == 0.5


def test_length_correlation_and_length_controlled_win_rate():
    # Longer tuned answers win, shorter ones lose, symmetrically: verdicts follow length entirely.
    scores = [1.0, 1.0, 0.0, 0.0]
    differences = [40, 40, -40, -40]
    assert length_correlation(scores, differences) == pytest.approx(1.0)
    assert lc_win_rate(scores, differences) == pytest.approx(0.5, abs=1e-6)
    # Pearson by hand: x = (1, 2, 3), y = (1, 0.5, 0) lie on a falling line.
    assert length_correlation([1.0, 0.5, 0.0], [1, 2, 3]) == pytest.approx(-1.0)
    # A tuned model that wins mostly when longer: the LC win rate is below the raw one.
    scores = [1.0] * 6 + [0.0] * 2 + [1.0, 0.0]
    differences = [50] * 6 + [-50] * 2 + [0, 0]
    raw = sum(scores) / len(scores)
    lc = lc_win_rate(scores, differences)
    assert 0.5 <= lc < raw
    assert lc_win_rate([1.0, 1.0], [10, -3]) == 1.0
    assert lc_win_rate([], []) is None


def test_lc_win_rate_with_constant_length_difference_is_the_win_rate():
    scores = [1.0, 0.0, 0.5, 1.0]
    assert lc_win_rate(scores, [7, 7, 7, 7]) == pytest.approx(sum(scores) / 4, abs=1e-6)


def test_canary_accuracy():
    assert canary_accuracy(["win", "win", "loss", None]) == 0.5
    assert canary_accuracy([]) is None
    assert math.isclose(canary_accuracy(["win"] * 3), 1.0)
