"""Writing whole runs, and reading runs back."""

from __future__ import annotations

import json
from typing import Sequence

from evalhub.contracts import RunSummary
from evalhub.errors import UserError
from evalhub.records import ModelRef, RunRecord
from evalhub.store._connect import read_connection, store_exists, write_connection
from evalhub.store._golden_sets import record_golden_sets
from evalhub.store._location import StoreArg

_GENERATION_COLUMNS = ("run_id", "role", "model_id", "golden_file", "item_id", "prompt", "output", "status", "reason",
                       "settings")
_RUN_COLUMNS = ("run_id", "kind", "status", "created_at", "base_model_id", "tuned_model_id", "judge", "golden", "config",
                "summary")


def _upsert_models(con, models: list[ModelRef]) -> None:
    unique = {m.model_id: m for m in models}
    con.executemany(
        "INSERT INTO models (model_id, kind, path, base_path, adapter_hash, base_hash) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (model_id) DO NOTHING",
        [[m.model_id, m.kind, m.path, m.base_path, m.adapter_hash, m.base_hash] for m in sorted(unique.values(), key=lambda m: m.model_id)],
    )


def _value(v):
    return json.dumps(v) if isinstance(v, (dict, list)) else v


def _insert_dicts(con, table: str, runs: Sequence[RunRecord], attribute: str) -> None:
    """Insert each run's dict rows of `attribute` by column name; dict and list values are stored as JSON.
    Rows with the same keys go in together."""
    groups: dict[tuple, list] = {}
    for run in runs:
        for row in getattr(run, attribute):
            groups.setdefault(tuple(row), []).append([run.run_id, *(_value(v) for v in row.values())])
    for keys, rows in groups.items():
        con.insert_rows(table, ["run_id", *keys], rows)


def save_runs(runs: Sequence[RunRecord], db: StoreArg = None) -> None:
    """Write `runs` and all their rows in one transaction: each is in the store whole or not at all."""
    if not runs:
        return
    with write_connection(db) as con:
        _upsert_models(con, [m for run in runs for m in (run.base, run.tuned)])
        con.insert_rows("runs", _RUN_COLUMNS, [
            [run.run_id, run.kind, "complete", run.created_at, run.base.model_id, run.tuned.model_id, run.judge,
             json.dumps(run.golden), json.dumps(run.config), json.dumps(run.summary)] for run in runs])
        con.insert_rows("generations", _GENERATION_COLUMNS, [
            [run.run_id, role, (run.tuned if role == "tuned" else run.base).model_id, golden_file, g.item_id,
             g.prompt, g.output, g.status, g.reason, json.dumps(settings)]
            for run in runs for role, golden_file, settings, g in run.generations])
        for table in ("judgments", "panel_judgments", "perplexity", "benchmarks", "benchmark_items", "golden_items",
                      "item_metrics"):
            _insert_dicts(con, table, runs, table)
        con.insert_rows("metrics", ("run_id", "stage", "name", "value", "detail"), [
            [run.run_id, stage, name, value, json.dumps(detail) if detail is not None else None]
            for run in runs for stage, name, value, detail in run.metrics])
        record_golden_sets(con, [run.run_id for run in runs])


def save_run(run: RunRecord, db: StoreArg = None) -> None:
    """Write `run` and all its rows in one transaction: a run is in the store whole or not at all."""
    save_runs([run], db)


def list_runs(db: StoreArg = None) -> list[dict]:
    """All runs, newest first, as dicts with their summaries typed (RunSummary)."""
    with read_connection(db) as con:
        cursor = con.execute(
            "SELECT r.run_id, r.kind, r.created_at, b.path AS base, t.path AS tuned, r.judge, r.summary "
            "FROM runs r JOIN models b ON b.model_id = r.base_model_id JOIN models t ON t.model_id = r.tuned_model_id "
            "ORDER BY r.created_at DESC, r.run_id DESC"
        )
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    for row in rows:
        row["summary"] = RunSummary.from_stored(json.loads(row["summary"]), row["run_id"], row["base"], row["tuned"])
    return rows


def load_run(run_id: str, db: StoreArg = None) -> dict:
    """One run (or 'latest') with its summary and config parsed."""
    runs = list_runs(db)
    if not runs:
        raise UserError("the store holds no runs yet; run `evalhub demo` or `evalhub compare` first")
    if run_id == "latest":
        return runs[0]
    matches = [r for r in runs if r["run_id"].startswith(run_id)]
    if len(matches) != 1:
        raise UserError(f"no single run matches {run_id!r}; `evalhub runs` lists them")
    return matches[0]


def run_exists(run_id: str, db: StoreArg = None) -> bool:
    """Whether the store already holds `run_id` (False when there is no store yet)."""
    if not store_exists(db):
        return False
    with read_connection(db) as con:
        return con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0] > 0
