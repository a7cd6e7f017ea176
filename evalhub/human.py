"""A run's human votes, summarised: the store's votes and judge verdicts fed to stats.human (what `evalhub
show RUN --json` prints under `human`, the run page shows and the gate reads); and the same per arena pair,
for the arena page."""

from __future__ import annotations

from evalhub.stats.human import human_stats
from evalhub.stats.pairwise import combine_orders


def _summary(votes, verdicts: dict) -> dict:
    judges = {judge: {key: combine_orders(*orders) for key, orders in items.items()}
              for judge, items in verdicts.items()}
    return human_stats([((v.golden_file, v.item_id), v.reviewer, v.verdict) for v in votes], judges)


def human_summary(run_id: str, db=None) -> dict | None:
    """The run's human statistics; None when nobody voted on it."""
    from evalhub.store import judge_item_verdicts, votes_for_run

    votes = votes_for_run(run_id, db, pair="")
    return _summary(votes, judge_item_verdicts(run_id, db)) if votes else None


def arena_human_summary(arena_id: str, pairs: list[tuple[str, str]], db=None) -> list[dict]:
    """Per pair (a, b) of the arena that reviewers voted on, in `pairs`' order: {"a", "b"} and the pair's human
    statistics, from a's side (as the arena's pair counts are)."""
    from evalhub.store import arena_pair_verdicts, pair_key, votes_for_run

    found = []
    for a, b in pairs:
        votes = votes_for_run(arena_id, db, pair=pair_key(a, b))
        if votes:
            found.append({"a": a, "b": b, **_summary(votes, arena_pair_verdicts(arena_id, a, b, db))})
    return found
