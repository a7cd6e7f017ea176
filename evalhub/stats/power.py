"""How small a win-rate difference a golden set can see: the minimum detectable effect of a run, and the
number of items a planned one needs (`evalhub golden plan`).

The item score is 1 (win), 0.5 (tie) or 0 (loss). Under "no difference" wins and losses are equally likely
and a share `tie_rate` of items are ties, so the score's variance is (1 - tie_rate) / 4: a tie carries no
evidence either way, which is why ties make a golden set see less. A two-sided z-test of the mean score
against 0.5 at level alpha then detects a true difference `effect` with probability `power` once

    n = (z_{1-alpha/2} + z_{power})^2 * (1 - tie_rate) / (4 * effect^2)

the normal-approximation sample size of a one-sample test of a mean (Chow, Shao & Wang, "Sample Size
Calculations in Clinical Research", 2nd ed., section 3.1.1), as "Adding Error Bars to Evals" (Miller 2024,
arXiv 2411.00640, section 5, "power analysis") recommends before an eval is run. Solved for the effect it
gives the minimum detectable effect (MDE) of n scored items. Items that share a cluster carry less than one
item's evidence each, so with clusters these numbers are optimistic (Miller 2024, section 3).
"""

from __future__ import annotations

import math


def _z_sum(power: float, alpha: float) -> float:
    from scipy.stats import norm

    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must lie strictly between 0 and 1")
    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def _check_tie_rate(tie_rate: float) -> None:
    if not 0 <= tie_rate < 1:
        raise ValueError("the tie rate must be at least 0 and below 1")


def minimum_detectable_effect(scored: int, tie_rate: float = 0.0, power: float = 0.8,
                              alpha: float = 0.05) -> float | None:
    """The smallest true |win rate - 0.5| that `scored` items with this tie rate detect with this power at
    this two-sided level; None without a scored item. It may exceed 0.5: then no difference is visible."""
    if scored <= 0:
        return None
    _check_tie_rate(tie_rate)
    return _z_sum(power, alpha) * math.sqrt((1 - tie_rate) / (4 * scored))


def items_needed(effect: float, tie_rate: float = 0.0, power: float = 0.8, alpha: float = 0.05) -> int:
    """Scored items needed to detect a true |win rate - 0.5| of `effect`; rounded up."""
    if not 0 < effect <= 0.5:
        raise ValueError("the effect is a win-rate difference from 0.5: more than 0 and at most 0.5")
    _check_tie_rate(tie_rate)
    return math.ceil(_z_sum(power, alpha) ** 2 * (1 - tie_rate) / (4 * effect ** 2) - 1e-9)
