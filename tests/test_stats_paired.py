"""Paired comparison of two models over the same items: McNemar, the paired bootstrap CI, and the verdict."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evalhub.stats.paired import compare_paired, mcnemar_test, paired_bootstrap_ci


def _outcomes(both_right: int, base_only: int, tuned_only: int, both_wrong: int) -> tuple[list[int], list[int]]:
    base = [1] * both_right + [1] * base_only + [0] * tuned_only + [0] * both_wrong
    tuned = [1] * both_right + [0] * base_only + [1] * tuned_only + [0] * both_wrong
    return base, tuned


def test_mcnemar_counts_discordant_items_and_matches_hand_computed_p_values():
    # 1 item only the base gets right, 5 only the tuned model: binomial(6, 1/2), P(X=0)=1/64, P(X=1)=6/64.
    result = mcnemar_test(*_outcomes(both_right=40, base_only=1, tuned_only=5, both_wrong=4))
    assert (result.base_only, result.tuned_only) == (1, 5)
    assert result.p_exact == pytest.approx(2 * 7 / 64)
    assert result.p_midp == pytest.approx(2 * (1 / 64 + 0.5 * 6 / 64))
    # The exact p-value is scipy's exact binomial test on the discordant pairs.
    assert result.p_exact == pytest.approx(stats.binomtest(1, 6, 0.5).pvalue)


def test_mcnemar_is_symmetric_and_ignores_concordant_items():
    few = mcnemar_test(*_outcomes(both_right=3, base_only=7, tuned_only=2, both_wrong=0))
    many = mcnemar_test(*_outcomes(both_right=900, base_only=2, tuned_only=7, both_wrong=90))
    assert few.p_midp == pytest.approx(many.p_midp)
    assert few.p_exact == pytest.approx(many.p_exact)


def test_mcnemar_without_discordant_items_finds_nothing():
    result = mcnemar_test([1, 0, 1], [1, 0, 1])
    assert (result.p_exact, result.p_midp) == (1.0, 1.0)


def test_mcnemar_rejects_non_binary_scores():
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_test([0.5, 1.0], [1.0, 1.0])


def test_bootstrap_ci_brackets_the_delta_and_matches_the_normal_width_on_many_items():
    rng = np.random.default_rng(1)
    base = rng.binomial(1, 0.7, size=2000)
    tuned = np.where(rng.random(2000) < 0.1, 1 - base, base)  # 10% of items flip
    low, high = paired_bootstrap_ci(base, tuned, n_resamples=4000, seed=3)
    deltas = tuned - base
    half_width = 1.96 * deltas.std(ddof=1) / np.sqrt(deltas.size)
    assert low < deltas.mean() < high
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)


def test_bootstrap_ci_is_seeded_and_degenerate_data_gives_a_point():
    base, tuned = _outcomes(both_right=30, base_only=4, tuned_only=1, both_wrong=5)
    assert paired_bootstrap_ci(base, tuned, seed=5) == paired_bootstrap_ci(base, tuned, seed=5)
    assert paired_bootstrap_ci([1, 1, 0], [1, 1, 0]) == (0.0, 0.0)


def test_a_real_drop_is_significant_and_noise_is_not():
    drop = compare_paired(*_outcomes(both_right=70, base_only=15, tuned_only=1, both_wrong=14))
    assert drop.test == "mcnemar-midp"
    assert drop.delta == pytest.approx(-14 / 100)
    assert drop.p_value < 0.001
    assert drop.ci_high < 0

    noise = compare_paired(*_outcomes(both_right=70, base_only=2, tuned_only=1, both_wrong=27))
    assert noise.delta < 0
    assert noise.p_value > 0.5
    assert noise.ci_low < 0 <= noise.ci_high


def test_non_binary_scores_use_a_paired_permutation_test():
    rng = np.random.default_rng(0)
    base = rng.random(60)
    shifted = compare_paired(base, base - 0.05 + rng.normal(0, 0.01, 60))
    assert shifted.test == "paired-permutation"
    assert shifted.p_value < 0.01
    same = compare_paired(base, base)
    assert (same.delta, same.p_value) == (0.0, 1.0)


def test_unpaired_inputs_are_refused():
    with pytest.raises(ValueError, match="one length"):
        compare_paired([1, 0, 1], [1, 0])
