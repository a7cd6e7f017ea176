"""What blind human votes say about a run: the humans' win rate with its interval, each judge's agreement with
the humans, and the reviewers' agreement with each other.

Votes are from the candidate's side ('win', 'loss', 'tie'; None: skipped, never counted). An item's human
verdict is its reviewers' majority; an item they split evenly (one 'win', one 'loss') is a 'tie', as an item
whose two judge orders disagree is (pairwise.combine_orders).
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Mapping, Sequence

import numpy as np

from evalhub.stats.agreement import CATEGORIES, cohen_kappa, raw_agreement
from evalhub.stats.pairwise import win_rate, wilson_ci


def item_verdict(votes: Sequence[str]) -> str | None:
    """The reviewers' verdict on one item: the strict majority of their votes; no majority is a 'tie'."""
    if not votes:
        return None
    (top, count), *rest = Counter(votes).most_common() + [(None, 0)]
    return top if count > rest[0][1] else "tie"


def fleiss_kappa_unequal(ratings: Sequence[Sequence[Hashable]],
                         categories: Sequence[Hashable] = CATEGORIES) -> tuple[float | None, float | None]:
    """Fleiss' kappa when items have different numbers m_i >= 2 of ratings: (P-bar, kappa).

    P_i = (sum_j n_ij^2 - m_i) / (m_i (m_i - 1)), P-bar = mean P_i, p_j = share of all ratings in category j,
    P_e = sum_j p_j^2, kappa = (P-bar - P_e) / (1 - P_e): Fleiss, Levin & Paik, "Statistical Methods for Rates
    and Proportions", 3rd ed. (Wiley 2003), section 18.1, eqs. 18.17-18.20 (unequal numbers of ratings per
    subject). With every m_i equal it is Fleiss (1971), agreement.fleiss_kappa. Kappa is None when P_e = 1.
    """
    rated = [r for r in ratings if len(r) >= 2]
    if not rated:
        return None, None
    counts = np.array([[sum(x == c for x in r) for c in categories] for r in rated], dtype=float)
    m = counts.sum(axis=1)
    p_bar = float(np.mean((np.sum(counts ** 2, axis=1) - m) / (m * (m - 1))))
    shares = counts.sum(axis=0) / counts.sum()
    p_e = float(np.sum(shares ** 2))
    if np.isclose(p_e, 1.0):
        return p_bar, None
    return p_bar, float((p_bar - p_e) / (1.0 - p_e))


def human_stats(votes: Sequence[tuple[Hashable, str, str | None]],
                judges: Mapping[str, Mapping[Hashable, str | None]] | None = None,
                confidence: float = 0.95) -> dict:
    """`votes`: (item, reviewer, verdict) with at most one vote per reviewer and item; `judges`: judge ->
    item -> the judge's verdict on the item (both orders combined; None: unscored).

    - n_votes, reviewers: the counted votes (skips left out) and who gave them;
    - win_rate, win_rate_ci: over voted items, (wins + ties / 2) / items, with the Wilson score interval
      (Wilson, "Probable inference, the law of succession, and statistical inference", JASA 22, 1927), as
      pairwise.wilson_ci computes it;
    - judge_agreement: per judge, over the items both it and the humans scored: n, accuracy (raw agreement)
      and Cohen's kappa (Cohen, "A coefficient of agreement for nominal scales", 1960) over win/loss/tie;
    - reviewer_agreement: over items two or more reviewers voted on: n, raw agreement and Fleiss' kappa for
      unequal numbers of ratings (Cohen's kappa is for a fixed pair of raters; here any reviewers may meet).
    """
    counted = [(item, reviewer, verdict) for item, reviewer, verdict in votes if verdict is not None]
    per_item: dict[Hashable, list[str]] = {}
    for item, _, verdict in counted:
        per_item.setdefault(item, []).append(verdict)
    humans = {item: item_verdict(v) for item, v in per_item.items()}
    tally = Counter(humans.values())
    wins, losses, ties = tally["win"], tally["loss"], tally["tie"]
    agreement = {}
    for judge, verdicts in (judges or {}).items():
        both = sorted((i for i in humans if verdicts.get(i) is not None), key=str)
        human_side = [humans[i] for i in both]
        judge_side = [verdicts[i] for i in both]
        agreement[judge] = {"n": len(both), "accuracy": raw_agreement(judge_side, human_side),
                            "kappa": cohen_kappa(judge_side, human_side, CATEGORIES)}
    shared = [v for v in per_item.values() if len(v) >= 2]
    raw, kappa = fleiss_kappa_unequal(shared)
    return {
        "n_votes": len(counted),
        "n_items": len(humans),
        "reviewers": sorted({reviewer for _, reviewer, _ in counted}),
        "wins": wins, "losses": losses, "ties": ties,
        "win_rate": win_rate(wins, losses, ties),
        "win_rate_ci": wilson_ci(wins, losses, ties, confidence),
        "judge_agreement": agreement,
        "reviewer_agreement": {"n": len(shared), "raw": raw, "kappa": kappa},
    }
