"""Bradley-Terry ratings of every model judged on one golden set, pooled over runs: each run compared a
tuned model with its base, and the shared bases link the adapters into one ranking. The fit reads outcome
counts per model pair, summed in the database."""

from __future__ import annotations

import pandas as pd

from evalhub.app.labels import Labels
from evalhub.stats.pairwise import SCORE
from evalhub.stats.ranking import bradley_terry_counts
from evalhub.store import PairCounts


def golden_set_ratings(pairs: list[PairCounts], labels: Labels, golden_key: str, n_bootstrap: int = 500) -> pd.DataFrame:
    """Ratings (Elo scale, 95% bootstrap CI) from the scored items counted in `pairs` on the golden set `golden_key`."""
    counts: dict[tuple[str, str, float], int] = {}
    for pair in pairs:
        if pair.golden_key != golden_key:
            continue
        for outcome, n in (("win", pair.wins), ("tie", pair.ties), ("loss", pair.losses)):
            key = (pair.tuned_id, pair.base_id, SCORE[outcome])
            counts[key] = counts.get(key, 0) + n
    ratings = bradley_terry_counts(counts, n_bootstrap=n_bootstrap)
    return pd.DataFrame(
        [{"model": labels.models.get(r.model, r.model), "rating": r.rating, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi,
          "items": r.comparisons, "model_id": r.model} for r in ratings],
        columns=["model", "rating", "ci_lo", "ci_hi", "items", "model_id"])
