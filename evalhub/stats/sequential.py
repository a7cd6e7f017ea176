"""An anytime-valid confidence sequence on the win rate, for judging that stops once the gate's decision is
known (`compare --gate --sequential`).

A fixed-sample interval (the bootstrap, Wilson) is valid only at the one sample size fixed in advance:
looking after every batch and stopping when it clears a threshold inflates the false-pass rate well past
alpha. A confidence sequence holds at every sample size at once, so it may be watched after every batch.

The method is the predictable plug-in hedged betting confidence sequence of Waudby-Smith & Ramdas,
"Estimating means of bounded random variables by betting" (JRSS-B 86(1), 2024; arXiv 2010.09686),
section 4 and Theorem 3, with the plug-in bets of its equations (26)-(27). For each candidate mean m in
[0, 1], two gamblers bet that the mean is above, and below, m; their capitals are

    K+_t(m) = prod_{i<=t} (1 + lambda+_i(m) (x_i - m)),   K-_t(m) = prod_{i<=t} (1 - lambda-_i(m) (x_i - m))

with lambda_i = sqrt(2 log(2/alpha) / (sigma^2_{i-1} i log(1 + i))), truncated to c/m (above) and c/(1-m)
(below), c = 1/2, and sigma^2_{i-1} the running variance estimate seeded at 1/4. The hedged capital is
(K+ + K-)/2, a nonnegative martingale under m, so by Ville's inequality the set of m whose capital stays
below 1/alpha covers the true mean at every t with probability at least 1 - alpha. Scores are the item
scores: 1 win, 0.5 tie, 0 loss. It adapts to the variance, so a golden set with many ties (small variance)
decides sooner than a Hoeffding bound would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

GRID = np.linspace(0.0, 1.0, 2001)  # candidate means; the interval's ends are read off this grid
TRUNCATION = 0.5                    # c of Waudby-Smith & Ramdas (2024), their suggested 1/2


@dataclass(frozen=True)
class ConfidenceSequence:
    lower: float
    upper: float
    n: int


def plug_in_bets(scores: Sequence[float], alpha: float) -> np.ndarray:
    """lambda_i for i = 1..t (before truncation): predictable, each from the scores before it."""
    x = np.asarray(scores, dtype=float)
    t = np.arange(1, x.size + 1)
    means = (0.5 + np.cumsum(x)) / (t + 1)                       # mu_hat_i
    previous_means = np.concatenate([[0.5], means[:-1]])          # mu_hat_{i-1}
    variances = (0.25 + np.cumsum((x - previous_means) ** 2)) / (t + 1)   # sigma^2_i
    previous_variances = np.concatenate([[0.25], variances[:-1]])  # sigma^2_{i-1}
    return np.sqrt(2 * np.log(2 / alpha) / (previous_variances * t * np.log1p(t)))


def hedged_capital(scores: Sequence[float], m: np.ndarray | float, alpha: float = 0.05) -> np.ndarray:
    """The hedged capital (K+ + K-)/2 after every score, at each candidate mean m: shape (t, len(m))."""
    x = np.asarray(scores, dtype=float)[:, None]
    m = np.atleast_1d(np.asarray(m, dtype=float))[None, :]
    bets = plug_in_bets(scores, alpha)[:, None]
    with np.errstate(divide="ignore"):
        up = np.minimum(bets, TRUNCATION / m)
        down = np.minimum(bets, TRUNCATION / (1 - m))
    grow_up = np.cumprod(1 + up * (x - m), axis=0)
    grow_down = np.cumprod(1 - down * (x - m), axis=0)
    return 0.5 * grow_up + 0.5 * grow_down


def confidence_sequence(scores: Sequence[float], alpha: float = 0.05) -> ConfidenceSequence:
    """The running intersection of the sequence's sets after the last score: every m whose hedged capital
    stayed below 1/alpha at every step so far. [0, 1] before any score."""
    if len(scores) == 0:
        return ConfidenceSequence(0.0, 1.0, 0)
    capital = hedged_capital(scores, GRID, alpha)
    kept = np.all(capital < 1 / alpha, axis=0)
    if not kept.any():  # cannot happen for a mean in [0, 1] except by grid rounding; keep the sample mean
        mean = float(np.mean(scores))
        return ConfidenceSequence(mean, mean, len(scores))
    inside = GRID[kept]
    return ConfidenceSequence(float(inside.min()), float(inside.max()), len(scores))


def decided(interval: ConfidenceSequence, thresholds: Sequence[float]) -> bool:
    """True once every threshold lies outside the interval: each "win rate >= threshold" is known either way."""
    return all(interval.lower >= threshold or interval.upper < threshold for threshold in thresholds)
