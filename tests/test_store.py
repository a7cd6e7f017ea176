"""The store: migrations from an empty file, one transaction per run, read-only readers, lock errors."""

from __future__ import annotations

import pytest

from evalhub.errors import UserError
from evalhub.records import Generation, ModelRef, RunRecord
from evalhub.store import list_runs, load_run, read_connection, save_run, write_connection
from evalhub.store._schema import MIGRATIONS


def _run(run_id: str) -> RunRecord:
    base = ModelRef(model_id="m-base", kind="base", path="/models/base")
    tuned = ModelRef(model_id="m-tuned", kind="adapter", path="/adapters/a", base_path="/models/base", adapter_hash="abc")
    return RunRecord(
        run_id=run_id, kind="compare", created_at="2026-01-01 00:00:00", base=base, tuned=tuned,
        config={"seed": 0}, summary={"run_id": "r1", "base": "b", "tuned": "t", "judge_stats": {
            "n": 4, "wins": 3, "losses": 1, "ties": 0, "scored": 4, "unscored": 0, "win_rate": 0.75}}, judge="reference", golden=["g.jsonl"],
        generations=[("base", "g.jsonl", {"temperature": 0}, Generation("i1", "p", "a")),
                     ("tuned", "g.jsonl", {"temperature": 0}, Generation("i1", "p", "b"))],
        judgments=[{"golden_file": "g.jsonl", "item_id": "i1", "tuned_position": "A", "judge": "reference",
                    "raw_reply": "{}", "status": "ok", "verdict": "win", "reason": "closer"}],
        metrics=[("judge", "win_rate", 0.75, None)],
        perplexity=[{"dataset": "general", "role": "base", "perplexity": 3.0, "bits_per_byte": 0.5, "tokens": 10, "bytes": 40}],
    )


def test_fresh_store_is_migrated_and_run_written_whole(tmp_path):
    db = tmp_path / "s.duckdb"
    save_run(_run("run-1"), db)
    with read_connection(db) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        assert con.execute("SELECT count(*) FROM generations WHERE run_id='run-1'").fetchone()[0] == 2
        assert con.execute("SELECT verdict FROM judgments").fetchone()[0] == "win"
        assert con.execute("SELECT perplexity FROM perplexity").fetchone()[0] == 3.0
    assert load_run("latest", db)["summary"].judge_stats.win_rate == 0.75


def test_failed_write_leaves_no_run(tmp_path):
    db = tmp_path / "s.duckdb"
    save_run(_run("run-1"), db)
    with pytest.raises(Exception):
        save_run(_run("run-1"), db)  # duplicate run id: the second transaction must roll back whole
    assert [r["run_id"] for r in list_runs(db)] == ["run-1"]
    with read_connection(db) as con:
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 2


def test_missing_store_names_the_demo(tmp_path):
    with pytest.raises(UserError, match="evalhub demo"):
        list_runs(tmp_path / "nope.duckdb")


def test_locked_store_gives_a_clear_error(tmp_path):
    import multiprocessing

    db = tmp_path / "s.duckdb"
    save_run(_run("run-1"), db)
    spawn = multiprocessing.get_context("spawn")
    ready, release = spawn.Event(), spawn.Event()
    holder = spawn.Process(target=_hold_lock, args=(str(db), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(UserError, match="locked by another process"):
            with write_connection(db, wait=0.5):
                pass
    finally:
        release.set()
        holder.join(30)


def _hold_lock(db, ready, release):
    import duckdb

    con = duckdb.connect(db)
    ready.set()
    release.wait(30)
    con.close()


def test_an_older_store_is_migrated_forward_keeping_its_runs(tmp_path, monkeypatch):
    from evalhub.store import _connect

    db = tmp_path / "s.duckdb"
    save_run(_run("run-1"), db)  # a store at the current schema
    upgrade = "ALTER TABLE runs ADD COLUMN note VARCHAR DEFAULT 'migrated';"
    monkeypatch.setattr(_connect, "MIGRATIONS", [*MIGRATIONS, upgrade])
    save_run(_run("run-2"), db)  # the next write applies the new migration once, in order
    with read_connection(db) as con:
        versions = [row[0] for row in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
        assert versions == list(range(1, len(MIGRATIONS) + 2))
        assert con.execute("SELECT run_id, note FROM runs ORDER BY run_id").fetchall() == [
            ("run-1", "migrated"), ("run-2", "migrated")]
    monkeypatch.setattr(_connect, "MIGRATIONS", MIGRATIONS[:0])
    with pytest.raises(UserError, match="newer evalhub"):
        save_run(_run("run-3"), db)


def test_golden_items_travel_with_the_run_and_into_the_export(tmp_path):
    import pyarrow.parquet as pq

    from evalhub.store import export_parquet, read_run

    db = tmp_path / "s.duckdb"
    run = _run("run-1")
    run.golden_items = [{"golden_file": "g.jsonl", "item_id": "i1", "instruction": "p", "input": "",
                         "output": "the ideal", "tags": ["greeting"]}]
    save_run(run, db)
    assert read_run("run-1", db).ideal_answers == {("g.jsonl", "i1"): "the ideal"}
    export_parquet("run-1", tmp_path / "parquet", db)
    assert pq.read_table(tmp_path / "parquet" / "golden_items.parquet").column("output").to_pylist() == ["the ideal"]


def test_a_first_schema_store_is_read_and_exported_without_migrating(tmp_path, monkeypatch):
    from evalhub.store import _connect, export_parquet, read_run

    db = tmp_path / "s.duckdb"
    monkeypatch.setattr(_connect, "MIGRATIONS", MIGRATIONS[:1])
    save_run(_run("run-1"), db)
    monkeypatch.undo()
    assert read_run("run-1", db).ideal_answers == {}
    written = {path.name for path in export_parquet("run-1", tmp_path / "parquet", db)}
    assert "runs.parquet" in written and "golden_items.parquet" not in written
    with read_connection(db) as con:  # readers never migrate
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
