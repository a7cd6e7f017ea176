"""The leaderboard's rows: one per run and golden set, with the judge's numbers for that golden set and the
run's forgetting, perplexity, gate and cost."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from evalhub.app.labels import Labels
from evalhub.contracts import RunSummary
from evalhub.app.verdicts import ItemVerdict, item_verdicts
from evalhub.stats.pairwise import ItemVerdicts, pairwise_stats
from evalhub.store._leaderboard import LeaderboardData, StoredJudgment, StoredRun

JUDGE_COLUMNS = ("win_rate", "ci_lo", "ci_hi", "wins", "ties", "losses", "lc_win_rate", "cost_usd")


def _from_summary(run: StoredRun) -> dict:
    """A run over one golden set: its stored judge statistics are that golden set's numbers, as printed."""
    stats = run.summary.judge_stats
    if stats is None:
        return dict.fromkeys(JUDGE_COLUMNS)
    ci = stats.win_rate_ci or (None, None)
    return {"win_rate": stats.win_rate, "ci_lo": ci[0], "ci_hi": ci[1], "wins": stats.wins, "ties": stats.ties,
            "losses": stats.losses, "lc_win_rate": stats.lc_win_rate, "cost_usd": stats.cost_usd}


def _from_judgments(data: LeaderboardData, verdicts: list[ItemVerdict], calls: list[StoredJudgment]) -> dict:
    """A run over several golden sets stores one judge_stats over all of them: this golden set's share is
    recomputed from its judge calls with the same statistics the run used."""
    items = [ItemVerdicts(item_id=v.item_id, tuned_first=v.tuned_first, tuned_second=v.tuned_second,
                          tuned_length=data.answer_lengths.get((v.run_id, v.golden_file, v.item_id, "tuned"), 0),
                          base_length=data.answer_lengths.get((v.run_id, v.golden_file, v.item_id, "base"), 0))
             for v in verdicts]
    stats = pairwise_stats(items)
    ci = stats["win_rate_ci"] or [None, None]
    costs = [j.cost_usd for j in calls if j.cost_usd is not None]
    return {"win_rate": stats["win_rate"], "ci_lo": ci[0], "ci_hi": ci[1], "wins": stats["wins"], "ties": stats["ties"],
            "losses": stats["losses"], "lc_win_rate": stats["lc_win_rate"], "cost_usd": sum(costs) if costs else None}


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


def leaderboard_rows(data: LeaderboardData, labels: Labels) -> pd.DataFrame:
    """Every (run, golden set) pair, newest first. Runs without a judge stage get one row with no golden set."""
    verdicts_by_file: dict[tuple[str, str], list[ItemVerdict]] = defaultdict(list)
    for verdict in item_verdicts(data.judgments):
        verdicts_by_file[(verdict.run_id, verdict.golden_file)].append(verdict)
    calls_by_file: dict[tuple[str, str], list[StoredJudgment]] = defaultdict(list)
    for judgment in data.judgments:
        calls_by_file[(judgment.run_id, judgment.golden_file)].append(judgment)

    rows = []
    for run in data.runs:
        common = {
            "run_id": run.run_id, "date": run.created_at, "tuned": labels.models[run.tuned.model_id],
            "tuned_kind": run.tuned.kind, "tuned_id": run.tuned.model_id, "base": labels.models[run.base.model_id],
            "base_id": run.base.model_id, "judge": run.judge or "–",
            "largest_forgetting": _largest_forgetting(run.summary), "gate": _gate(run.summary),
            **{f"ppl_delta_pct:{name}": p.delta_pct for name, p in (run.summary.perplexity or {}).items()},
        }
        if not run.golden:
            rows.append({**common, "golden_set": "–", "golden_key": None, **dict.fromkeys(JUDGE_COLUMNS)})
            continue
        for path in run.golden:
            judged = (_from_summary(run) if len(run.golden) == 1 else
                      _from_judgments(data, verdicts_by_file[(run.run_id, path)], calls_by_file[(run.run_id, path)]))
            key = labels.golden_key[(run.run_id, path)]
            rows.append({**common, "golden_set": labels.golden_sets[key], "golden_key": key, "golden_file": path, **judged})
    return pd.DataFrame(rows)
