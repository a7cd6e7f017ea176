"""Bradley-Terry ratings of every model judged on one golden set, pooled over runs: each run compared a
tuned model with its base, and the shared bases link the adapters into one ranking."""

from __future__ import annotations

import pandas as pd

from evalhub.app.labels import Labels
from evalhub.app.verdicts import item_verdicts
from evalhub.stats.pairwise import SCORE
from evalhub.stats.ranking import PairedOutcome, bradley_terry
from evalhub.store._leaderboard import LeaderboardData


def golden_set_ratings(data: LeaderboardData, labels: Labels, golden_key: str, run_ids: set[str],
                       n_bootstrap: int = 500) -> pd.DataFrame:
    """Ratings (Elo scale, 95% bootstrap CI) from the scored items of `run_ids` on the golden set `golden_key`."""
    runs = {run.run_id: run for run in data.runs if run.run_id in run_ids}
    outcomes = [
        PairedOutcome(model_a=runs[v.run_id].tuned.model_id, model_b=runs[v.run_id].base.model_id, score=SCORE[v.outcome])
        for v in item_verdicts([j for j in data.judgments if j.run_id in runs])
        if v.outcome is not None and labels.golden_key.get((v.run_id, v.golden_file)) == golden_key
    ]
    ratings = bradley_terry(outcomes, n_bootstrap=n_bootstrap)
    return pd.DataFrame(
        [{"model": labels.models[r.model], "rating": r.rating, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi,
          "items": r.comparisons, "model_id": r.model} for r in ratings],
        columns=["model", "rating", "ci_lo", "ci_hi", "items", "model_id"])
