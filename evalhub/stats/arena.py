"""Statistics of an arena: many models judged pair by pair on the same golden items.

Ratings: a Bradley-Terry model, P(a beats b) = sigmoid(theta_a - theta_b), fitted to every item's folded
outcome (both orders; orders that disagree make a tie, counted as half a win for each side), reported on the
Elo scale (1000 + 400 / ln 10 * theta: +400 is 10:1 odds). `prior_sd` None fits the unregularised maximum
likelihood (the textbook estimate, reproduced on the four-team worked example of Bradley-Terry's Wikipedia
article in tests/test_arena_stats.py); a number adds a Gaussian prior of that sd on each theta, a weak one
that keeps ratings finite when a model wins or loses every comparison (where no maximum-likelihood rating
exists) and pulls little otherwise: at sd 2 its curvature (0.25) is that of a single 50/50 comparison,
against 100 items per pair in an arena.

Confidence intervals: percentile bootstrap over golden items (Efron & Tibshirani, An Introduction to the
Bootstrap, 1993, ch. 13). An item is resampled whole, with its outcomes in every pair, because one item's
outcomes across pairs are not independent (a hard prompt is hard for every pair); resampling single
comparisons, as a plain battle bootstrap does (LMArena's arena-rank), would understate the intervals. In the
maximum-likelihood mode, a resample in which some model won or lost everything has no finite estimate; it is
left out and counted (`dropped_resamples`), which narrows the extreme models' intervals, one more reason the
weak prior is the default.

Ranks: rank = 1 + the number of models whose interval lies wholly above this one's (their lower bound above
its upper bound), so models that cannot be told apart share a rank.

Pairs: each pair's win rate (from a's side) with its bootstrap interval and two-sided sign test come from the
judge stage (evalhub.stats.pairwise); the p-values of all pairs are adjusted with Holm's step-down method
(Holm 1979), which controls the family-wise error rate with no assumption about how the tests depend on each
other, and a pair "differs significantly" when its adjusted p-value is below `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evalhub.stats.ranking import ELO_CENTRE, ELO_PER_LOGIT, _fit, mle_exists


@dataclass(frozen=True)
class ItemOutcome:
    """One golden item judged between models a and b, both orders folded; `score` is a's share (1, 0.5, 0)."""

    item: str
    a: str
    b: str
    score: float


@dataclass(frozen=True)
class ArenaRating:
    model: str
    rating: float | None
    ci: tuple[float, float] | None
    rank: int | None
    comparisons: int


@dataclass(frozen=True)
class ArenaRatings:
    ratings: list[ArenaRating]   # in the order of `models`
    prior_sd: float | None
    resamples: int
    dropped_resamples: int


def to_elo(theta: np.ndarray) -> np.ndarray:
    return ELO_CENTRE + ELO_PER_LOGIT * theta


def arena_ratings(outcomes: Sequence[ItemOutcome], models: Sequence[str], prior_sd: float | None = 2.0,
                  n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0) -> ArenaRatings:
    """Bradley-Terry ratings of `models` with item-bootstrap intervals and ranks. A model without a scored
    comparison gets no rating (None). With `prior_sd` None and no finite maximum-likelihood estimate,
    ValueError."""
    models = list(models)
    index = {m: i for i, m in enumerate(models)}
    rows: dict[tuple[int, int, float], int] = {}
    items: dict[str, dict[int, float]] = {}
    for o in outcomes:
        if not 0 <= o.score <= 1:
            raise ValueError("an outcome's score is a's share of the win, between 0 and 1")
        key = (index[o.a], index[o.b], float(o.score))
        row = rows.setdefault(key, len(rows))
        items.setdefault(o.item, {}).setdefault(row, 0)
        items[o.item][row] += 1
    keys = list(rows)
    first = np.array([k[0] for k in keys], dtype=int)
    second = np.array([k[1] for k in keys], dtype=int)
    score = np.array([k[2] for k in keys], dtype=float)
    # Item x row counts: a bootstrap draw of items weights the rows by how often their items were drawn.
    by_item = np.zeros((len(items), len(keys)))
    for i, counts in enumerate(items.values()):
        for row, n in counts.items():
            by_item[i, row] = n
    weight = by_item.sum(axis=0)
    compared = np.bincount(first, weight, len(models)) + np.bincount(second, weight, len(models))
    rated = [i for i in range(len(models)) if compared[i] > 0]
    if not rated:
        return ArenaRatings([ArenaRating(m, None, None, None, 0) for m in models], prior_sd, 0, 0)
    # Fit only the models with comparisons (a model without any would sit at the prior's centre, or break the MLE).
    local = {g: k for k, g in enumerate(rated)}
    f, s = np.array([local[i] for i in first]), np.array([local[i] for i in second])
    theta = _fit(f, s, score, weight, len(rated), prior_sd)

    rng = np.random.default_rng(seed)
    fits, dropped = [], 0
    for _ in range(n_bootstrap):
        draw = rng.multinomial(len(items), np.full(len(items), 1 / len(items)))
        resampled = draw @ by_item
        if prior_sd is None and not mle_exists(f, s, score, resampled, len(rated)):
            dropped += 1
            continue
        fits.append(_fit(f, s, score, resampled, len(rated), prior_sd))
    alpha = (1 - confidence) / 2
    if fits:
        lo, hi = np.quantile(np.array(fits), [alpha, 1 - alpha], axis=0)
    else:
        lo, hi = theta, theta
    elo, elo_lo, elo_hi = to_elo(theta), to_elo(lo), to_elo(hi)
    intervals = {g: (float(elo_lo[k]), float(elo_hi[k])) for g, k in local.items()}
    ratings = []
    for i, model in enumerate(models):
        if i not in local:
            ratings.append(ArenaRating(model, None, None, None, 0))
            continue
        low, high = intervals[i]
        rank = 1 + sum(other[0] > high for j, other in intervals.items() if j != i)
        ratings.append(ArenaRating(model, float(elo[local[i]]), (low, high), rank, int(compared[i])))
    return ArenaRatings(ratings, prior_sd, len(fits), dropped)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and is not counted among the tests)."""
    present = [(p, k) for k, p in enumerate(p_values) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for step, (p, k) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - step) * p))
        adjusted[k] = running
    return adjusted
