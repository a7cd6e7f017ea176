"""`run_golden_sets`: each run's judged items per golden set, folded and counted in SQL as the run is written
(and by `evalhub import`, and once for older runs when the table is created). The leaderboard reads these
counts, not judge calls.

An item's two judge calls fold as the run's statistics fold them (`evalhub.stats.pairwise.combine_orders`):
both orders must give a verdict, and orders that disagree make a tie. Canaries are not items.
"""

from __future__ import annotations

import json
from typing import Sequence

from evalhub.store._engine import Connection

_CHUNK = 500

# Per (run, golden file): items folded from their two judge calls, then counted.
_ITEM_COUNTS = """
SELECT run_id, golden_file,
       CAST(sum(CASE WHEN outcome = 'win' THEN 1 ELSE 0 END) AS BIGINT),
       CAST(sum(CASE WHEN outcome = 'tie' THEN 1 ELSE 0 END) AS BIGINT),
       CAST(sum(CASE WHEN outcome = 'loss' THEN 1 ELSE 0 END) AS BIGINT),
       CAST(sum(CASE WHEN outcome IS NULL THEN 1 ELSE 0 END) AS BIGINT)
FROM (
    SELECT run_id, golden_file, item_id,
           CASE WHEN max(first) IS NULL OR max(second) IS NULL THEN NULL
                WHEN max(first) = max(second) THEN max(first) ELSE 'tie' END AS outcome
    FROM (
        SELECT run_id, golden_file, item_id,
               CASE WHEN tuned_position = 'A' AND status = 'ok' THEN verdict END AS first,
               CASE WHEN tuned_position = 'B' AND status = 'ok' THEN verdict END AS second
        FROM judgments WHERE NOT is_canary AND run_id IN ({runs})
    ) calls
    GROUP BY run_id, golden_file, item_id
) items
GROUP BY run_id, golden_file
"""
_CALLS = """
SELECT run_id, golden_file, CAST(count(*) AS BIGINT), sum(cost_usd)
FROM judgments WHERE run_id IN ({runs}) GROUP BY run_id, golden_file
"""
COLUMNS = ("run_id", "golden_file", "golden_key", "position", "golden_sets", "wins", "ties", "losses", "unscored",
           "judge_calls", "cost_usd")


def record_golden_sets(con: Connection, run_ids: Sequence[str]) -> None:
    """Fill `run_golden_sets` for `run_ids` (runs already written in this transaction, without rows there).
    A store of an older schema, without the table, is left as it is."""
    if not run_ids or "run_golden_sets" not in con.tables():
        return
    for start in range(0, len(run_ids), _CHUNK):
        chunk = list(run_ids[start:start + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        runs = con.execute(f"SELECT run_id, golden, config -> 'inputs' FROM runs WHERE run_id IN ({marks})",
                           chunk).fetchall()
        counts = {(r[0], r[1]): r[2:] for r in con.execute(_ITEM_COUNTS.format(runs=marks), chunk).fetchall()}
        calls = {(r[0], r[1]): r[2:] for r in con.execute(_CALLS.format(runs=marks), chunk).fetchall()}
        rows = []
        for run_id, golden, inputs in runs:
            paths = json.loads(golden) if golden else []
            hashes = json.loads(inputs) if inputs else {}
            hashes = hashes if isinstance(hashes, dict) else {}
            for position, path in enumerate(paths):
                wins, ties, losses, unscored = counts.get((run_id, path), (0, 0, 0, 0))
                n_calls, cost = calls.get((run_id, path), (0, None))
                rows.append([run_id, path, hashes.get(path) or path, position, len(paths), int(wins), int(ties),
                             int(losses), int(unscored), int(n_calls), None if cost is None else float(cost)])
        con.insert_rows("run_golden_sets", COLUMNS, rows)


def backfill(con: Connection) -> None:
    """The migration that creates the table fills it for the runs the store already holds."""
    record_golden_sets(con, [row[0] for row in con.execute("SELECT run_id FROM runs").fetchall()])


def counts_for_older_store(con: Connection) -> None:
    """A read-only reader of a store written before `run_golden_sets` existed (never migrated by a reader):
    the same counts, for this connection only, in a temporary table (DuckDB allows one on a read-only file)."""
    con.execute("CREATE TEMP TABLE run_golden_sets (run_id VARCHAR, golden_file VARCHAR, golden_key VARCHAR, "
                "position INTEGER, golden_sets INTEGER, wins INTEGER, ties INTEGER, losses INTEGER, unscored INTEGER, "
                "judge_calls INTEGER, cost_usd DOUBLE)")
    record_golden_sets(con, [row[0] for row in con.execute("SELECT run_id FROM runs").fetchall()])
