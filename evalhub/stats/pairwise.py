"""Statistics of a blind pairwise comparison: the tuned model against its base, item by item.

Every item is judged twice, once with the tuned answer shown first and once second. `combine_orders` turns
the two verdicts into one per item (an item whose orders disagree is a tie, one with a failed order is not
scored); `pairwise_stats` then reports the win rate with its uncertainty and the judge's telemetry.
Verdicts are always from the tuned model's side: 'win', 'loss' or 'tie'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class ItemVerdicts:
    """One item's two judged orders and the two answers' lengths (characters); optionally the answers
    themselves (for style control), the item's tags (for breakdowns), and whether the answers were identical
    (a tie settled without a judge call, left out of position consistency)."""

    item_id: str
    tuned_first: str | None    # verdict when the tuned answer was "Answer A"; None when that call gave no verdict
    tuned_second: str | None   # verdict when the tuned answer was "Answer B"
    tuned_length: int
    base_length: int
    tuned_text: str | None = None
    base_text: str | None = None
    tags: tuple[str, ...] = ()
    identical: bool = False
    cluster: str | None = None  # items sharing a source (a conversation, a document) share one


@dataclass(frozen=True)
class ItemOutcome:
    """One item's folded verdict ('win', 'loss', 'tie' from the tuned side, None when unscored) and what the
    statistics of outcomes need besides."""

    item_id: str
    verdict: str | None
    tuned_length: int
    base_length: int
    tuned_text: str | None = None
    base_text: str | None = None
    tags: tuple[str, ...] = ()
    cluster: str | None = None


def combine_orders(tuned_first: str | None, tuned_second: str | None) -> str | None:
    """The item's verdict: both orders must have given one; if they disagree, the item is a tie."""
    if tuned_first is None or tuned_second is None:
        return None
    return tuned_first if tuned_first == tuned_second else "tie"


def win_rate(wins: int, losses: int, ties: int) -> float | None:
    """(wins + ties / 2) / scored; None when nothing was scored."""
    scored = wins + losses + ties
    return (wins + 0.5 * ties) / scored if scored else None


def bootstrap_ci(scores: Sequence[float], seed: int = 0, resamples: int = 2000,
                 confidence: float = 0.95, clusters: Sequence[str | None] | None = None) -> list[float] | None:
    """Percentile bootstrap over items of the mean item score (1 win, 0.5 tie, 0 loss).

    Items, not judge calls, are resampled: the two orders of one item are not independent evidence. With
    `clusters` (one per score; None: an item of its own), whole clusters are resampled and the statistic is
    the ratio of their score sums to their item counts: the cluster bootstrap (Field & Welsh, "Bootstrapping
    clustered data", JRSS-B 69(3), 2007), which "Adding Error Bars to Evals" (Miller 2024, arXiv 2411.00640,
    section 3) recommends when items share a source. Fewer than two items (or clusters) give no interval.
    """
    from scipy.stats import bootstrap

    data = np.asarray(scores, dtype=float)
    if data.size < 2:
        return None  # one item says nothing about the spread: [x, x] would claim certainty
    if np.all(data == data[0]):
        return [float(data[0]), float(data[0])]  # no spread to resample
    rng = np.random.default_rng(seed)
    if clusters is not None and any(c is not None for c in clusters):
        sums, sizes = cluster_totals(data, clusters)
        if sums.size < 2:
            return None  # one cluster: no spread between clusters to measure
        result = bootstrap((sums, sizes), lambda s, n, axis=-1: s.sum(axis=axis) / n.sum(axis=axis), paired=True,
                           n_resamples=resamples, confidence_level=confidence, method="percentile", rng=rng)
    else:
        result = bootstrap((data,), np.mean, n_resamples=resamples, confidence_level=confidence,
                           method="percentile", rng=rng)
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def cluster_totals(scores: Sequence[float], clusters: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster's score sum and item count (an item without a cluster is a cluster of its own)."""
    sums: dict[object, float] = {}
    sizes: dict[object, int] = {}
    for index, (score, cluster) in enumerate(zip(scores, clusters)):
        key = ("item", index) if cluster is None else ("cluster", cluster)
        sums[key] = sums.get(key, 0.0) + float(score)
        sizes[key] = sizes.get(key, 0) + 1
    return np.array(list(sums.values())), np.array(list(sizes.values()), dtype=float)


def count_clusters(clusters: Sequence[str | None]) -> int | None:
    """How many clusters the items form (an item without one counts alone); None when no item has one."""
    if not any(c is not None for c in clusters):
        return None
    return len({("cluster", c) if c is not None else ("item", k) for k, c in enumerate(clusters)})


def wilson_ci(wins: int, losses: int, ties: int, confidence: float = 0.95) -> list[float] | None:
    """Wilson score interval for the win rate, ties counted as half a win: a closed-form cross-check of the
    bootstrap that behaves well near 0 and 1 and for small n."""
    from scipy.stats import norm

    n = wins + losses + ties
    if n == 0:
        return None
    p = (wins + 0.5 * ties) / n
    z = norm.ppf(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test of wins against losses (ties carry no sign); 1.0 when there is neither."""
    from scipy.stats import binomtest

    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue)


def clustered_test(scores: Sequence[float], clusters: Sequence[str | None]) -> float:
    """Two-sided p-value of "mean score = 0.5" with the cluster-robust standard error of "Adding Error Bars
    to Evals" (Miller 2024, arXiv 2411.00640, equation 4): SE^2 = sum over clusters of (the cluster's summed
    deviations from the mean)^2 / n^2, then a normal test. Items of one source move together, which the sign
    test would count as independent evidence."""
    from scipy.stats import norm

    data = np.asarray(scores, dtype=float)
    if data.size == 0:
        return 1.0
    deviations, _ = cluster_totals(data - data.mean(), clusters)
    se = float(np.sqrt(np.sum(deviations ** 2)) / data.size)
    if se == 0:
        return 1.0 if data.mean() == 0.5 else 0.0
    return float(2 * norm.sf(abs(data.mean() - 0.5) / se))


def position_consistency(items: Sequence[ItemVerdicts]) -> float | None:
    """Share of items, among those with a verdict in both orders, whose two verdicts agree. A judge that
    always prefers the first answer scores 0 on a set where one side is always better."""
    both = [i for i in items if i.tuned_first is not None and i.tuned_second is not None and not i.identical]
    if not both:
        return None
    return sum(i.tuned_first == i.tuned_second for i in both) / len(both)


def inconsistent_items(items: Sequence[ItemVerdicts]) -> int:
    """Items whose two orders both gave a verdict and the verdicts disagree: the judge followed the answer
    order, not the answers. They fold to a tie (combine_orders) but are counted apart from real ties, where
    both orders said tie."""
    return sum(i.tuned_first is not None and i.tuned_second is not None and i.tuned_first != i.tuned_second
               and not i.identical for i in items)


def length_correlation(scores: Sequence[float], length_differences: Sequence[float]) -> float | None:
    """Pearson correlation of the item score with (tuned length - base length): how much the verdicts follow
    answer length. None when either side is constant."""
    from scipy.stats import pearsonr

    x = np.asarray(length_differences, dtype=float)
    y = np.asarray(scores, dtype=float)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(pearsonr(x, y).statistic)


def lc_win_rate(scores: Sequence[float], length_differences: Sequence[float], slope_penalty: float = 1e-2) -> float | None:
    """Length-controlled win rate, after AlpacaEval 2's idea: fit P(tuned preferred) =
    sigmoid(a + b * tanh(length difference / its std)) to the item scores (ties as 0.5, a soft label) and
    report sigmoid(a), the predicted win rate when both answers are equally long.

    A small ridge penalty on b keeps the fit finite when length separates wins from losses perfectly; the
    intercept is free, so with no length differences the LC win rate equals the plain win rate.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    y = np.asarray(scores, dtype=float)
    if y.size == 0:
        return None
    if np.all(y == y[0]):
        return float(y[0])  # all wins (or all losses): nothing for length to explain
    d = np.asarray(length_differences, dtype=float)
    spread = d.std()
    x = np.tanh(d / spread) if spread > 0 else np.zeros_like(d)

    def loss(params: np.ndarray) -> float:
        z = params[0] + params[1] * x
        return float(-np.mean(y * log_expit(z) + (1 - y) * log_expit(-z)) + 0.5 * slope_penalty * params[1] ** 2)

    def gradient(params: np.ndarray) -> np.ndarray:
        residual = expit(params[0] + params[1] * x) - y
        return np.array([residual.mean(), (residual * x).mean() + slope_penalty * params[1]])

    fit = minimize(loss, x0=np.zeros(2), jac=gradient, method="BFGS", options={"gtol": 1e-10})
    return float(expit(fit.x[0]))


def canary_accuracy(verdicts: Sequence[str | None]) -> float | None:
    """Share of canary calls (ideal answer against a constant non-answer, the ideal on the 'tuned' side) in
    which the judge preferred the ideal answer. An unreadable reply counts as wrong; None when no canary
    call got a reply."""
    if not verdicts:
        return None
    return sum(v == "win" for v in verdicts) / len(verdicts)


def pairwise_stats(items: Sequence[ItemVerdicts], seed: int = 0, resamples: int = 2000,
                   confidence: float = 0.95) -> dict:
    """Counts, win rate with bootstrap and Wilson intervals, sign test, position consistency, length
    correlation, the length- and style-controlled win rates and the breakdown by tag, over the items given."""
    outcomes = [ItemOutcome(i.item_id, combine_orders(i.tuned_first, i.tuned_second), i.tuned_length, i.base_length,
                            i.tuned_text, i.base_text, i.tags, i.cluster) for i in items]
    return {**outcome_stats(outcomes, seed=seed, resamples=resamples, confidence=confidence),
            "position_consistency": position_consistency(items), "inconsistent": inconsistent_items(items)}


def outcome_stats(outcomes: Sequence[ItemOutcome], seed: int = 0, resamples: int = 2000, confidence: float = 0.95,
                  by_tag: bool = True) -> dict:
    """The statistics of folded item verdicts (a judge's, or a panel's majority): everything pairwise_stats
    reports but position consistency and inconsistent items, which need the orders."""
    from evalhub.stats.power import minimum_detectable_effect
    from evalhub.stats.style import sc_win_rate

    scored = [o for o in outcomes if o.verdict is not None]
    wins = sum(o.verdict == "win" for o in scored)
    losses = sum(o.verdict == "loss" for o in scored)
    ties = len(scored) - wins - losses
    scores = [SCORE[o.verdict] for o in scored]
    length_differences = [o.tuned_length - o.base_length for o in scored]
    with_texts = all(o.tuned_text is not None and o.base_text is not None for o in scored)
    result = {
        "n": len(outcomes),
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "scored": len(scored),
        "unscored": len(outcomes) - len(scored),
        "win_rate": win_rate(wins, losses, ties),
        "win_rate_ci": bootstrap_ci(scores, seed=seed, resamples=resamples, confidence=confidence,
                                    clusters=[o.cluster for o in scored]),
        "clusters": count_clusters([o.cluster for o in scored]),
        # What this many scored items, with this share of ties, can see at 80% power and alpha 0.05.
        "mde": minimum_detectable_effect(len(scored), ties / len(scored)) if scored and ties < len(scored) else None,
        "wilson_ci": wilson_ci(wins, losses, ties, confidence=confidence),
        "p_value": sign_test(wins, losses) if count_clusters([o.cluster for o in scored]) is None
        else clustered_test(scores, [o.cluster for o in scored]),
        "length_correlation": length_correlation(scores, length_differences),
        "lc_win_rate": lc_win_rate(scores, length_differences),
        "sc_win_rate": sc_win_rate(scores, [o.tuned_text for o in scored], [o.base_text for o in scored])
        if with_texts else None,
    }
    if by_tag:
        result["by_tag"] = tag_breakdown(outcomes, seed=seed, resamples=resamples, confidence=confidence)
    return result


def tag_breakdown(outcomes: Sequence[ItemOutcome], seed: int = 0, resamples: int = 2000,
                  confidence: float = 0.95) -> dict[str, dict]:
    """Per tag of the golden items: n (items with the tag), wins, losses, ties, win rate and its bootstrap CI.
    An item with several tags counts under each; items without tags are not broken down."""
    tags = sorted({tag for o in outcomes for tag in o.tags})
    breakdown = {}
    for tag in tags:
        tagged = [o for o in outcomes if tag in o.tags]
        scored = [o for o in tagged if o.verdict is not None]
        wins = sum(o.verdict == "win" for o in scored)
        losses = sum(o.verdict == "loss" for o in scored)
        ties = len(scored) - wins - losses
        breakdown[tag] = {"n": len(tagged), "wins": wins, "losses": losses, "ties": ties,
                          "win_rate": win_rate(wins, losses, ties),
                          "win_rate_ci": bootstrap_ci([SCORE[o.verdict] for o in scored], seed=seed,
                                                      resamples=resamples, confidence=confidence)}
    return breakdown


def panel_verdict(verdicts: Sequence[str | None]) -> str | None:
    """A panel's verdict on one item from its judges' item verdicts: the verdict more than half of the judges
    gave, else a tie; None only when no judge gave one. A judge without a verdict still counts in the
    denominator, so an unreadable judge cannot hand the decision to the others."""
    given = [v for v in verdicts if v is not None]
    if not given:
        return None
    for candidate in ("win", "loss", "tie"):
        if 2 * given.count(candidate) > len(verdicts):
            return candidate
    return "tie"
