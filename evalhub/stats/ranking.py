"""Bradley-Terry ratings with bootstrap confidence intervals: several models judged on one golden set,
ranked against each other even though each run only compared one tuned model with its base.

Every judged item is one paired outcome between two models. The model says P(a beats b) =
sigmoid(theta_a - theta_b); a tie counts as half a win for each side, the usual Bradley-Terry reading of
ties. Ratings are reported on the Elo scale (1000 at the prior's centre, +400 = 10:1 odds) because that
is the scale leaderboards readers already know.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

ELO_PER_LOGIT = 400 / np.log(10)
ELO_CENTRE = 1000.0


@dataclass(frozen=True)
class PairedOutcome:
    """One item judged between two models; `score` is model_a's share of the win: 1 win, 0.5 tie, 0 loss."""

    model_a: str
    model_b: str
    score: float


@dataclass(frozen=True)
class Rating:
    """A model's Bradley-Terry rating (Elo scale) with its bootstrap confidence interval."""

    model: str
    rating: float
    ci_lo: float
    ci_hi: float
    comparisons: int


def _fit(first: np.ndarray, second: np.ndarray, score: np.ndarray, weight: np.ndarray, n_models: int,
         prior_sd: float | None, start: np.ndarray | None = None) -> np.ndarray:
    """Log-strengths for weighted outcomes (the weights carry the bootstrap resample): maximum a-posteriori
    under a Gaussian prior of sd `prior_sd`, or with `prior_sd` None the unregularised maximum-likelihood
    estimate, centred on 0 (the strengths' geometric mean is 1). The MLE exists only when every model won
    (or tied) something against, and lost something to, the others: else ValueError (see `mle_exists`).

    Damped Newton steps: the objective is strictly convex (thanks to the prior, or for the MLE to the
    centring term (sum theta)^2 / 2, which fixes only the common shift the likelihood cannot see) and has
    only one parameter per model, so a handful of exact steps beat a general-purpose optimiser by far in the
    bootstrap loop.
    """
    from scipy.special import expit, log_expit

    if prior_sd is None and not mle_exists(first, second, score, weight, n_models):
        raise ValueError("no finite maximum-likelihood ratings: a model won, or lost, every comparison with the "
                         "others; use the weak prior (prior_sd) instead")
    precision = 0.0 if prior_sd is None else 1 / prior_sd**2
    centring = 1.0 if prior_sd is None else 0.0

    def objective(theta: np.ndarray) -> float:
        diff = theta[first] - theta[second]
        return float(-np.sum(weight * (score * log_expit(diff) + (1 - score) * log_expit(-diff)))
                     + precision * np.sum(theta**2) / 2 + centring * np.sum(theta) ** 2 / 2)

    # A bootstrap resample starts from the full data's fit, a step or two from its own optimum.
    theta = np.zeros(n_models) if start is None else start.copy()
    loss = objective(theta)
    for _ in range(100):
        p = expit(theta[first] - theta[second])
        residual = weight * (p - score)
        grad = (np.bincount(first, residual, n_models) - np.bincount(second, residual, n_models)
                + precision * theta + centring * np.sum(theta))
        curvature = weight * p * (1 - p)
        hess = np.eye(n_models) * precision + centring
        np.add.at(hess, (first, first), curvature)
        np.add.at(hess, (second, second), curvature)
        np.add.at(hess, (first, second), -curvature)
        np.add.at(hess, (second, first), -curvature)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while (new_loss := objective(theta - size * step)) > loss - 1e-4 * size * (grad @ step) and size > 1e-6:
            size /= 2
        theta, loss = theta - size * step, new_loss
        if np.max(np.abs(size * step)) < 1e-9:
            break
    return theta


def mle_exists(first: np.ndarray, second: np.ndarray, score: np.ndarray, weight: np.ndarray, n_models: int) -> bool:
    """Whether finite maximum-likelihood strengths exist (Zermelo 1929; Ford 1957): for every split of the
    models into two groups, each group won (a tie counts for both) something against the other, i.e. the
    graph "i took a share of some comparison with j" is strongly connected."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    took = weight > 0
    rows = np.concatenate([first[took & (score > 0)], second[took & (score < 1)]])
    cols = np.concatenate([second[took & (score > 0)], first[took & (score < 1)]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_models, n_models))
    return connected_components(graph, directed=True, connection="strong")[0] == 1


def bradley_terry(outcomes: Sequence[PairedOutcome], n_bootstrap: int = 500, confidence: float = 0.95,
                  seed: int = 0, prior_sd: float = 2.0) -> list[Rating]:
    """Rate every model in `outcomes`, best first, with percentile bootstrap intervals.

    The bootstrap resamples items within each pair of models, so every resample keeps the design (which
    pairs were compared, how often) and only the luck of the items varies. A weak Gaussian prior on the
    log-strengths (sd `prior_sd`) keeps ratings finite when one model wins every item, and places models
    that were never compared with each other's group around the same centre: compare ratings only within
    models linked by comparisons.
    """
    # Identical outcomes collapse into one weighted row: the fit and every resample get a few rows, not
    # thousands, and the result is the same.
    return bradley_terry_counts(Counter((o.model_a, o.model_b, float(o.score)) for o in outcomes),
                                n_bootstrap=n_bootstrap, confidence=confidence, seed=seed, prior_sd=prior_sd)


def bradley_terry_counts(outcomes: Mapping[tuple[str, str, float], int], n_bootstrap: int = 500,
                         confidence: float = 0.95, seed: int = 0, prior_sd: float = 2.0) -> list[Rating]:
    """`bradley_terry` over outcome counts: {(model_a, model_b, score): number of items}, as a database
    aggregates them (the leaderboard reads counts per model pair, not judged items)."""
    outcomes = {key: n for key, n in outcomes.items() if n > 0}
    if not outcomes:
        return []
    models = sorted({a for a, _, _ in outcomes} | {b for _, b, _ in outcomes})
    index = {model: i for i, model in enumerate(models)}
    if any(not 0 <= score <= 1 for _, _, score in outcomes):
        raise ValueError("a paired outcome's score is the share of the win, between 0 and 1")
    rows = {(index[a], index[b], float(score)): n for (a, b, score), n in outcomes.items()}
    first = np.array([a for a, _, _ in rows])
    second = np.array([b for _, b, _ in rows])
    score = np.array([s for _, _, s in rows])
    count = np.array(list(rows.values()), dtype=float)

    theta = _fit(first, second, score, count, len(models), prior_sd)

    groups: dict[frozenset, list[int]] = defaultdict(list)
    for row, pair in enumerate(zip(first.tolist(), second.tolist())):
        groups[frozenset(pair)].append(row)
    rng = np.random.default_rng(seed)
    resampled = np.empty((n_bootstrap, len(models)))
    for b in range(n_bootstrap):
        weight = np.zeros(len(count))
        for members in groups.values():
            n = count[members].sum()
            weight[members] = rng.multinomial(int(n), count[members] / n)
        resampled[b] = _fit(first, second, score, weight, len(models), prior_sd, start=theta)

    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(resampled, [alpha, 1 - alpha], axis=0) if n_bootstrap else (theta, theta)
    # Where every resample is the data itself (one outcome throughout, e.g. every item won), each refit lands on
    # the estimate only up to the optimizer's tolerance, so a percentile bound could sit a rounding error inside
    # it; the interval holds the estimate by construction.
    lo, hi = np.minimum(lo, theta), np.maximum(hi, theta)
    counts = np.bincount(first, count, len(models)) + np.bincount(second, count, len(models))
    ratings = [
        Rating(model=model, rating=float(ELO_CENTRE + ELO_PER_LOGIT * theta[i]),
               ci_lo=float(ELO_CENTRE + ELO_PER_LOGIT * lo[i]), ci_hi=float(ELO_CENTRE + ELO_PER_LOGIT * hi[i]),
               comparisons=int(counts[i]))
        for i, model in enumerate(models)
    ]
    return sorted(ratings, key=lambda r: r.rating, reverse=True)
