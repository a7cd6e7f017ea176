"""Writing a whole run, and reading runs back."""

from __future__ import annotations

import json
from pathlib import Path

from evalhub.contracts import RunSummary
from evalhub.errors import UserError
from evalhub.records import ModelRef, RunRecord
from evalhub.store._connect import read_connection, write_connection


def _upsert_model(con, model: ModelRef) -> None:
    con.execute(
        "INSERT INTO models (model_id, kind, path, base_path, adapter_hash, base_hash) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (model_id) DO NOTHING",
        [model.model_id, model.kind, model.path, model.base_path, model.adapter_hash, model.base_hash],
    )


def _insert_rows(con, table: str, run_id: str, rows: list[dict]) -> None:
    """Insert dict rows by column name; dict and list values are stored as JSON."""
    if not rows:
        return
    columns = ["run_id", *rows[0]]
    values = [[run_id, *(json.dumps(v) if isinstance(v, (dict, list)) else v for v in row.values())] for row in rows]
    placeholders = ", ".join("?" for _ in columns)
    con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", values)


def save_run(run: RunRecord, db: Path | None = None) -> None:
    """Write `run` and all its rows in one transaction: a run is in the store whole or not at all."""
    with write_connection(db) as con:
        _upsert_model(con, run.base)
        _upsert_model(con, run.tuned)
        con.execute(
            "INSERT INTO runs (run_id, kind, status, created_at, base_model_id, tuned_model_id, judge, golden, config, summary) "
            "VALUES (?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, run.kind, run.created_at, run.base.model_id, run.tuned.model_id, run.judge,
             json.dumps(run.golden), json.dumps(run.config), json.dumps(run.summary)],
        )
        if run.generations:
            con.executemany(
                "INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[run.run_id, role, (run.tuned if role == "tuned" else run.base).model_id, golden_file, g.item_id,
                  g.prompt, g.output, g.status, g.reason, json.dumps(settings)]
                 for role, golden_file, settings, g in run.generations],
            )
        for table, rows in (("judgments", run.judgments), ("perplexity", run.perplexity),
                            ("benchmarks", run.benchmarks), ("benchmark_items", run.benchmark_items),
                            ("golden_items", run.golden_items)):
            _insert_rows(con, table, run.run_id, rows)
        if run.metrics:
            con.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
                [[run.run_id, stage, name, value, json.dumps(detail) if detail is not None else None]
                 for stage, name, value, detail in run.metrics],
            )


def list_runs(db: Path | None = None) -> list[dict]:
    """All runs, newest first, as dicts with their summaries typed (RunSummary)."""
    with read_connection(db) as con:
        cursor = con.execute(
            "SELECT r.run_id, r.kind, r.created_at, b.path AS base, t.path AS tuned, r.judge, r.summary "
            "FROM runs r JOIN models b ON b.model_id = r.base_model_id JOIN models t ON t.model_id = r.tuned_model_id "
            "ORDER BY r.created_at DESC"
        )
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    for row in rows:
        row["summary"] = RunSummary.from_stored(json.loads(row["summary"]), row["run_id"], row["base"], row["tuned"])
    return rows


def load_run(run_id: str, db: Path | None = None) -> dict:
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


def run_exists(run_id: str, db: Path | None = None) -> bool:
    """Whether the store already holds `run_id` (False when there is no store yet)."""
    db = Path(db) if db else None
    from evalhub.store._connect import default_db_path

    if not (db or default_db_path()).exists():
        return False
    with read_connection(db) as con:
        return con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] > 0
