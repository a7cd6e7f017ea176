"""The store on both engines (a DuckDB file, a database on a real PostgreSQL server): migrations from empty,
one transaction per run, read-only readers, lock errors, the leaderboard's counts."""

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


def test_fresh_store_is_migrated_and_run_written_whole(store):
    db = store
    save_run(_run("run-1"), db)
    with read_connection(db) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        assert con.execute("SELECT count(*) FROM generations WHERE run_id='run-1'").fetchone()[0] == 2
        assert con.execute("SELECT verdict FROM judgments").fetchone()[0] == "win"
        assert con.execute("SELECT perplexity FROM perplexity").fetchone()[0] == 3.0
    assert load_run("latest", db)["summary"].judge_stats.win_rate == 0.75


def test_failed_write_leaves_no_run(store):
    db = store
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


def test_an_older_store_is_migrated_forward_keeping_its_runs(store, monkeypatch):
    from evalhub.store import _connect

    db = store
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


def test_golden_items_travel_with_the_run_and_into_the_export(store, tmp_path):
    import pyarrow.parquet as pq

    from evalhub.store import export_parquet, read_run

    db = store
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


def test_an_empty_database_is_not_read_as_a_store_until_written(pg_url):
    with pytest.raises(UserError, match="holds no evalhub store yet"):
        list_runs(pg_url)
    save_run(_run("run-1"), pg_url)  # the first write migrates it
    assert [r["run_id"] for r in list_runs(pg_url)] == ["run-1"]


def test_a_database_holding_other_tables_is_refused(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(UserError, match="not evalhub's"):
        save_run(_run("run-1"), pg_url)


def _judged(run_id: str, tuned: str, created_at: str, verdicts: dict[str, tuple[str | None, str | None]],
            golden: list[str] = ("g.jsonl",)) -> RunRecord:
    """A run whose items got these (tuned first, tuned second) verdicts (None: that call did not parse)."""
    run = _run(run_id)
    run.tuned = ModelRef(model_id=tuned, kind="adapter", path=f"/adapters/{tuned}", base_path="/models/base",
                         adapter_hash=tuned)
    run.created_at, run.golden = created_at, list(golden)
    run.config = {"inputs": {path: f"sha-{path}" for path in golden}}
    run.judgments = [
        {"golden_file": path, "item_id": item, "tuned_position": position, "judge": "reference", "raw_reply": "{}",
         "status": "ok" if verdict else "parse_fail", "verdict": verdict, "reason": "", "cost_usd": 0.25,
         "is_canary": False}
        for path in golden for item, pair in verdicts.items() for position, verdict in zip("AB", pair)]
    run.judgments.append({"golden_file": golden[0], "item_id": "canary-1", "tuned_position": "A", "judge": "reference",
                          "raw_reply": "{}", "status": "ok", "verdict": "loss", "reason": "", "cost_usd": 0.25,
                          "is_canary": True})
    return run


def test_leaderboard_counts_items_in_the_store_as_the_run_statistics_fold_them(store):
    from evalhub.store import LeaderboardFilter, read_leaderboard

    verdicts = {"i1": ("win", "win"), "i2": ("win", "loss"), "i3": ("loss", "loss"), "i4": ("tie", "tie"),
                "i5": ("win", None)}
    save_run(_judged("old-a", "a", "2026-01-01 00:00:00", {"i1": ("loss", "loss")}), store)
    save_run(_judged("new-a", "a", "2026-01-02 00:00:00", verdicts), store)
    save_run(_judged("only-b", "b", "2026-01-01 12:00:00", verdicts, golden=["g.jsonl", "h.jsonl"]), store)

    data = read_leaderboard(store)
    assert data.run_count == 3 and data.judges == ["reference"] and data.base_ids == ["m-base"]
    assert data.golden_sets == {"sha-g.jsonl": "g.jsonl", "sha-h.jsonl": "h.jsonl"}
    # Newest per tuned model and golden set: old-a is left out; only-b has a row per golden set.
    assert [(r.run.run_id, r.golden.golden_file) for r in data.rows] == [
        ("new-a", "g.jsonl"), ("only-b", "g.jsonl"), ("only-b", "h.jsonl")]
    counts = data.rows[0].golden
    # i1 win, i2 orders disagree: tie, i3 loss, i4 tie, i5 unscored; the canary is no item but costs a call.
    assert (counts.wins, counts.ties, counts.losses, counts.unscored) == (1, 2, 1, 1)
    assert counts.judge_calls == 11 and counts.cost_usd == pytest.approx(2.75)
    assert data.rows[0].items is None and len(data.rows[1].items) == 5  # per-item orders only for several sets
    assert {(i.item_id, i.tuned_first, i.tuned_second) for i in data.rows[1].items} >= {("i5", "win", None)}
    # The ranking's counts pool every run passing the filters, old-a included.
    pairs = {(p.golden_key, p.tuned_id): (p.wins, p.ties, p.losses) for p in data.pairs}
    assert pairs == {("sha-g.jsonl", "a"): (1, 2, 2), ("sha-g.jsonl", "b"): (1, 2, 1), ("sha-h.jsonl", "b"): (1, 2, 1)}

    every = read_leaderboard(store, LeaderboardFilter(every_run=True, golden_keys=("sha-g.jsonl",)))
    assert [r.run.run_id for r in every.rows] == ["new-a", "only-b", "old-a"]
    judged_by_nobody = read_leaderboard(store, LeaderboardFilter(judges=("–",)))
    assert judged_by_nobody.rows == [] and judged_by_nobody.pairs == []


def test_save_runs_writes_many_runs_in_one_transaction(store):
    from evalhub.store import save_runs

    with pytest.raises(Exception):
        save_runs([_run("run-1"), _run("run-2"), _run("run-1")], store)  # a duplicate: nothing is written
    with pytest.raises(UserError, match="no runs yet"):
        load_run("latest", store)
    save_runs([_run("run-1"), _run("run-2")], store)
    assert sorted(r["run_id"] for r in list_runs(store)) == ["run-1", "run-2"]


def test_store_locations_parse_paths_and_urls_and_never_show_a_password(tmp_path, monkeypatch):
    from pathlib import Path

    from evalhub.store import location

    url = "postgresql://ci:s3cr%40t@db.internal:5433/evalhub"
    where = location(url)
    assert where.is_postgres and str(where) == "postgresql://ci@db.internal:5433/evalhub"
    assert "s3cr" not in repr(where) and where.child_env() == {"EVALHUB_DB": str(where), "PGPASSWORD": "s3cr@t"}
    assert location(Path(url)).url == url  # a URL that went through pathlib (typer's Path options) still works
    assert location(tmp_path / "s.duckdb").path == tmp_path / "s.duckdb"
    monkeypatch.setenv("EVALHUB_DB", "postgres://db.internal/evalhub")
    assert location(None).is_postgres
    monkeypatch.delenv("EVALHUB_DB")
    assert location(None).path == Path("evalhub.duckdb")
    for bad, says in (("mysql://root:pw@h/x", "only DuckDB files"), ("postgresql://u:pw@h:port/x", "not a number"),
                      (str(tmp_path), "is a folder")):
        with pytest.raises(UserError, match=says) as refused:
            location(bad)
        assert "pw@" not in str(refused.value)
