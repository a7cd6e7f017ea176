"""The leaderboard's rows: one per run and golden set, with the judge's numbers for that golden set, the
reviewers' win rate on it, and the run's forgetting, perplexity, gate and cost."""

from __future__ import annotations

import pandas as pd

from evalhub.app.labels import Labels
from evalhub.contracts import RunSummary
from evalhub.stats.human import human_stats
from evalhub.stats.pairwise import ItemVerdicts, pairwise_stats
from evalhub.store import GoldenSetCounts, ItemOrders, LeaderboardData, StoredRun

ROW_COLUMNS = ("run_id", "date", "tuned", "tuned_kind", "tuned_id", "base", "base_id", "judge", "largest_forgetting",
               "gate", "human_win_rate", "golden_set", "golden_key", "golden_file")
JUDGE_COLUMNS = ("win_rate", "ci_lo", "ci_hi", "wins", "ties", "losses", "lc_win_rate", "cost_usd")


def _from_summary(run: StoredRun) -> dict:
    """A run over one golden set: its stored judge statistics are that golden set's numbers, as printed."""
    stats = run.summary.judge_stats
    if stats is None:
        return dict.fromkeys(JUDGE_COLUMNS)
    ci = stats.win_rate_ci or (None, None)
    return {"win_rate": stats.win_rate, "ci_lo": ci[0], "ci_hi": ci[1], "wins": stats.wins, "ties": stats.ties,
            "losses": stats.losses, "lc_win_rate": stats.lc_win_rate, "cost_usd": stats.cost_usd}


def _from_items(golden: GoldenSetCounts, items: list[ItemOrders]) -> dict:
    """A run over several golden sets stores one judge_stats over all of them: this golden set's share is
    recomputed from its items' two orders (folded in the database) with the same statistics the run used."""
    stats = pairwise_stats([ItemVerdicts(item_id=i.item_id, tuned_first=i.tuned_first, tuned_second=i.tuned_second,
                                         tuned_length=i.tuned_length, base_length=i.base_length) for i in items])
    ci = stats["win_rate_ci"] or [None, None]
    return {"win_rate": stats["win_rate"], "ci_lo": ci[0], "ci_hi": ci[1], "wins": stats["wins"], "ties": stats["ties"],
            "losses": stats["losses"], "lc_win_rate": stats["lc_win_rate"], "cost_usd": golden.cost_usd}


def _largest_forgetting(summary: RunSummary) -> str:
    """The largest significant accuracy drop, as the gate measures it; drops the paired test cannot tell
    from noise are not forgetting."""
    tasks = summary.benchmarks
    if not tasks:
        return "not measured"
    drops = {task: -t.delta for task, t in tasks.items() if t.forgetting and t.delta is not None}
    if not drops:
        return "none"
    task = max(drops, key=drops.get)
    return f"{task} −{100 * drops[task]:.1f} pts"


def _gate(summary: RunSummary) -> str:
    gate = summary.gate
    return "–" if gate is None else "passed" if gate.passed else "FAILED"


def human_win_rates(votes: list[tuple[str, str, str, str, str]]) -> dict[tuple[str, str], float]:
    """(run, golden file) -> the reviewers' win rate of the candidate (stats.human: each item's majority, a tie
    counting half), from the store's counted votes (store.compare_votes)."""
    grouped: dict[tuple[str, str], list] = {}
    for run_id, golden_file, item_id, reviewer, verdict in votes:
        grouped.setdefault((run_id, golden_file), []).append((item_id, reviewer, verdict))
    return {key: human_stats(group)["win_rate"] for key, group in grouped.items()}


def leaderboard_rows(data: LeaderboardData, labels: Labels,
                     human: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """One row per (run, golden set) the store listed, newest first. Runs without a judge stage get one row
    with no golden set. `human` (human_win_rates) fills the human column; it is blank where nobody voted."""
    human = human or {}
    rows = []
    for listed in data.rows:
        run, golden = listed.run, listed.golden
        common = {
            "run_id": run.run_id, "date": run.created_at, "tuned": labels.models[run.tuned.model_id],
            "tuned_kind": run.tuned.kind, "tuned_id": run.tuned.model_id, "base": labels.models[run.base.model_id],
            "base_id": run.base.model_id, "judge": run.judge or "–",
            "largest_forgetting": _largest_forgetting(run.summary), "gate": _gate(run.summary),
            "human_win_rate": human.get((run.run_id, golden.golden_file)) if golden else None,
            **{f"ppl_delta_pct:{name}": p.delta_pct for name, p in (run.summary.perplexity or {}).items()},
        }
        if golden is None:
            rows.append({**common, "golden_set": "–", "golden_key": None, **dict.fromkeys(JUDGE_COLUMNS)})
            continue
        judged = _from_summary(run) if golden.golden_sets == 1 else _from_items(golden, listed.items or [])
        rows.append({**common, "golden_set": labels.golden_sets[golden.golden_key], "golden_key": golden.golden_key,
                     "golden_file": golden.golden_file, **judged})
    return pd.DataFrame(rows, columns=None if rows else [*ROW_COLUMNS, *JUDGE_COLUMNS])
