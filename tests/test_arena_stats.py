"""The arena's statistics, checkable by hand: Bradley-Terry's maximum likelihood on a published worked example,
its existence condition, the item bootstrap, ranks from intervals, and Holm's correction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalhub.stats.arena import ItemOutcome, arena_ratings, holm
from evalhub.stats.ranking import ELO_CENTRE, ELO_PER_LOGIT, PairedOutcome, bradley_terry

# The worked example of Wikipedia's "Bradley-Terry model" article (section "Worked example of solution
# procedure"): four teams, 22 games, wins[row][column] = games the row team won against the column team.
# The iterative (Zermelo/Ford) procedure converges, normalised to a geometric mean of 1, to
# p = (0.640, 1.043, 0.660, 2.270).
WINS = {("A", "B"): 2, ("A", "D"): 1, ("B", "A"): 3, ("B", "C"): 5, ("C", "B"): 3, ("C", "D"): 1,
        ("D", "A"): 4, ("D", "C"): 3}
PUBLISHED = {"A": 0.640, "B": 1.043, "C": 0.660, "D": 2.270}


def _strengths(ratings) -> dict[str, float]:
    return {r.model: math.exp((r.rating - ELO_CENTRE) / ELO_PER_LOGIT) for r in ratings}


def test_the_maximum_likelihood_fit_reproduces_the_published_worked_example():
    games = [PairedOutcome(a, b, 1.0) for (a, b), n in WINS.items() for _ in range(n)]
    strengths = _strengths(bradley_terry(games, n_bootstrap=0, prior_sd=None))
    assert strengths == pytest.approx(PUBLISHED, abs=5e-4)
    # The same estimate through the arena's fit (games as items), and the ML equations hold: each team's
    # expected wins equal its actual wins.
    outcomes = [ItemOutcome(f"game-{k}", a, b, 1.0) for k, (a, b) in
                enumerate((a, b) for (a, b), n in WINS.items() for _ in range(n))]
    fitted = arena_ratings(outcomes, list("ABCD"), prior_sd=None, n_bootstrap=0)
    arena = {r.model: math.exp((r.rating - ELO_CENTRE) / ELO_PER_LOGIT) for r in fitted.ratings}
    assert arena == pytest.approx(PUBLISHED, abs=5e-4)
    for team in "ABCD":
        won = sum(n for (a, _), n in WINS.items() if a == team)
        games_against = {other: WINS.get((team, other), 0) + WINS.get((other, team), 0) for other in "ABCD"}
        expected = sum(n * arena[team] / (arena[team] + arena[other]) for other, n in games_against.items() if n)
        assert expected == pytest.approx(won, abs=1e-6)


def test_no_maximum_likelihood_when_a_model_wins_everything_and_the_prior_keeps_it_finite():
    outcomes = [ItemOutcome(f"i{k}", "strong", "weak", 1.0) for k in range(20)]
    with pytest.raises(ValueError, match="no finite maximum-likelihood"):
        arena_ratings(outcomes, ["strong", "weak"], prior_sd=None)
    rated = {r.model: r for r in arena_ratings(outcomes, ["strong", "weak"], prior_sd=2.0, n_bootstrap=50).ratings}
    assert math.isfinite(rated["strong"].rating) and rated["strong"].rating > rated["weak"].rating
    # A tie is half a win for each side: one is enough for the estimate to exist.
    tied = outcomes + [ItemOutcome("i-tie", "strong", "weak", 0.5)]
    assert arena_ratings(tied, ["strong", "weak"], prior_sd=None, n_bootstrap=0).ratings[0].rating is not None


def test_ranks_share_a_place_when_intervals_overlap_and_the_bootstrap_resamples_items():
    # Three models: a and b evenly matched, c better than both (4 items in 5); every item judged in every pair.
    rng = np.random.default_rng(0)
    outcomes = []
    for item in range(150):
        outcomes.append(ItemOutcome(f"item-{item}", "a", "b", float(item % 2)))
        outcomes.append(ItemOutcome(f"item-{item}", "a", "c", float(item % 5 == 0)))
        outcomes.append(ItemOutcome(f"item-{item}", "b", "c", float(rng.permutation(5)[0] == 0)))
    fitted = arena_ratings(outcomes, ["a", "b", "c"], prior_sd=None, n_bootstrap=300, seed=1)
    rated = {r.model: r for r in fitted.ratings}
    assert rated["c"].rank == 1 and rated["a"].rank == rated["b"].rank == 2  # a and b cannot be told apart
    for r in fitted.ratings:
        assert r.ci[0] <= r.rating <= r.ci[1] and r.comparisons == 300
    assert fitted.resamples == 300 and fitted.dropped_resamples == 0
    # Same seed, same intervals.
    again = arena_ratings(outcomes, ["a", "b", "c"], prior_sd=None, n_bootstrap=300, seed=1)
    assert [r.ci for r in again.ratings] == [r.ci for r in fitted.ratings]


def test_holm_adjusts_step_down_and_keeps_missing_values_out():
    # Holm (1979): sorted p-values times (m - k + 1), made monotone, capped at 1.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.6]) == pytest.approx([1.0, None, 1.0]) or holm([0.5, None, 0.6])[1] is None
    assert holm([0.02, None]) == [0.02, None]
