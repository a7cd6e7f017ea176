"""Agreement between raters on categorical verdicts: raw agreement, Cohen's kappa (two raters) and Fleiss'
kappa (any number), the textbook formulas in numpy (no sklearn).

Kappa corrects raw agreement for the agreement two raters would reach by chance from their own category
frequencies alone: a judge that answers "tie" to everything agrees often with a cautious colleague and
still earns a kappa near 0. Conventional reading (Landis and Koch): < 0.2 slight, 0.2-0.4 fair, 0.4-0.6
moderate, 0.6-0.8 substantial, > 0.8 almost perfect.

Categories are any hashable labels; None means "no verdict" and is never a category: callers pass only the
items every rater concerned scored.
"""

from __future__ import annotations

from itertools import combinations
from typing import Hashable, Mapping, Sequence

import numpy as np

CATEGORIES = ("win", "loss", "tie")


def raw_agreement(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Share of items on which two raters gave the same label; None for no items."""
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    if not first:
        return None
    return sum(a == b for a, b in zip(first, second)) / len(first)


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable],
                categories: Sequence[Hashable] | None = None) -> float | None:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e), p_e = sum over categories of the product of the two raters'
    marginal shares. None for no items; when chance agreement is already perfect (both raters always gave one
    and the same label) kappa is undefined and None is returned too."""
    observed = raw_agreement(first, second)
    if observed is None:
        return None
    labels = list(categories) if categories is not None else sorted(set(first) | set(second), key=str)
    n = len(first)
    expected = sum((sum(a == c for a in first) / n) * (sum(b == c for b in second) / n) for c in labels)
    if np.isclose(expected, 1.0):
        return None
    return float((observed - expected) / (1.0 - expected))


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]], categories: Sequence[Hashable] | None = None) -> tuple[float | None, float | None]:
    """Fleiss' kappa for items each rated by the same number m >= 2 of raters: (raw agreement P-bar, kappa).

    For item i with n_ij raters choosing category j: P_i = (sum_j n_ij^2 - m) / (m (m - 1)); P-bar = mean P_i;
    p_j = share of all ratings in category j; P_e = sum_j p_j^2; kappa = (P-bar - P_e) / (1 - P_e). P-bar is
    the raw agreement (the chance that two raters drawn from the item agree). Kappa is None when P_e = 1.
    """
    if not ratings:
        return None, None
    m = len(ratings[0])
    if m < 2 or any(len(r) != m for r in ratings):
        raise ValueError("every item needs the same number (2 or more) of ratings")
    labels = list(categories) if categories is not None else sorted({x for r in ratings for x in r}, key=str)
    counts = np.array([[sum(x == c for x in r) for c in labels] for r in ratings], dtype=float)
    p_items = (np.sum(counts ** 2, axis=1) - m) / (m * (m - 1))
    p_bar = float(p_items.mean())
    shares = counts.sum(axis=0) / (len(ratings) * m)
    p_e = float(np.sum(shares ** 2))
    if np.isclose(p_e, 1.0):
        return p_bar, None
    return p_bar, float((p_bar - p_e) / (1.0 - p_e))


def panel_agreement(verdicts: Mapping[str, Mapping[str, str | None]]) -> dict | None:
    """Inter-judge agreement of a panel: `verdicts` maps judge -> item id -> 'win' | 'loss' | 'tie' | None.

    Over the items every judge scored: raw agreement and Cohen's kappa for two judges, raw agreement (P-bar)
    and Fleiss' kappa for more; plus Cohen's kappa for every pair of judges (over the items both scored).
    None for a single judge.
    """
    judges = list(verdicts)
    if len(judges) < 2:
        return None
    items = sorted(set.intersection(*(set(v) for v in verdicts.values())))
    common = [i for i in items if all(verdicts[j][i] is not None for j in judges)]
    if len(judges) == 2:
        first = [verdicts[judges[0]][i] for i in common]
        second = [verdicts[judges[1]][i] for i in common]
        raw, kappa, method = raw_agreement(first, second), cohen_kappa(first, second, CATEGORIES), "cohen"
    else:
        raw, kappa = fleiss_kappa([[verdicts[j][i] for j in judges] for i in common], CATEGORIES)
        method = "fleiss"
    pairs = {}
    for a, b in combinations(judges, 2):
        both = [i for i in items if verdicts[a][i] is not None and verdicts[b][i] is not None]
        pairs[f"{a} | {b}"] = {"n": len(both),
                               "raw": raw_agreement([verdicts[a][i] for i in both], [verdicts[b][i] for i in both]),
                               "kappa": cohen_kappa([verdicts[a][i] for i in both], [verdicts[b][i] for i in both],
                                                    CATEGORIES)}
    return {"raw": raw, "kappa": kappa, "method": method, "n": len(common), "pairs": pairs}
