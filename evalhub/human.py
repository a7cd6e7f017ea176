"""A run's human votes, summarised: the store's votes and judge verdicts fed to stats.human (what `evalhub
show RUN --json` prints under `human`, the run page shows and the gate reads)."""

from __future__ import annotations

from evalhub.stats.human import human_stats
from evalhub.stats.pairwise import combine_orders


def human_summary(run_id: str, db=None) -> dict | None:
    """The run's human statistics; None when nobody voted on it."""
    from evalhub.store import judge_item_verdicts, votes_for_run

    votes = votes_for_run(run_id, db, pair="")
    if not votes:
        return None
    judges = {judge: {key: combine_orders(*orders) for key, orders in items.items()}
              for judge, items in judge_item_verdicts(run_id, db).items()}
    return human_stats([((v.golden_file, v.item_id), v.reviewer, v.verdict) for v in votes], judges)
