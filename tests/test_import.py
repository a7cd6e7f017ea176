"""`evalhub import`: runs gathered from store files and export folders into a store on either engine, with
everything they carry, idempotently by run id, all or nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from evalhub.errors import UserError
from evalhub.store import export_parquet, import_runs, list_runs, read_connection, read_run, save_run, save_training_run
from tests.test_store import _run

# A run-keyed table another feature adds later (tags): import carries it without knowing it.
TAGS = "CREATE TABLE run_tags (run_id VARCHAR NOT NULL, tag VARCHAR NOT NULL, PRIMARY KEY (run_id, tag));"


def _evalhub(*args, env=None):
    return subprocess.run([sys.executable, "-m", "evalhub", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def _source(tmp_path, run_ids):
    """A DuckDB store with `run_ids`, their golden items, a tag each, and the adapter's training curve."""
    db = tmp_path / f"ci-{run_ids[0]}.duckdb"
    for run_id in run_ids:
        run = _run(run_id)
        run.golden_items = [{"golden_file": "g.jsonl", "item_id": "i1", "instruction": "p", "input": "",
                             "output": "the ideal", "tags": ["greeting"]}]
        save_run(run, db)
    save_training_run("abc", "/adapters/a", "sft", {"seed": 0}, [{"step": 1, "split": "train", "loss": 2.5},
                                                                  {"step": 2, "split": "train", "loss": 1.5}], db)
    import duckdb

    with duckdb.connect(str(db)) as con:
        con.executemany("INSERT INTO run_tags VALUES (?, ?)", [[run_id, "nightly"] for run_id in run_ids])
    return db


@pytest.fixture
def with_tags(monkeypatch):
    from evalhub.store import _connect
    from evalhub.store._schema import MIGRATIONS

    monkeypatch.setattr(_connect, "MIGRATIONS", [*MIGRATIONS, TAGS])


def _counts(db, run_id):
    with read_connection(db) as con:
        return {table: con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchall()[0][0]
                for table in ("runs", "generations", "judgments", "metrics", "perplexity", "golden_items", "run_tags",
                              "run_golden_sets")}


def test_import_gathers_store_files_and_export_folders_whole_and_idempotently(store, tmp_path, with_tags):
    first = _source(tmp_path, ["run-1", "run-2"])
    second = _source(tmp_path, ["run-3"])
    export_parquet("run-3", tmp_path / "export", second)

    result = import_runs([first, tmp_path / "export"], store)
    assert sorted(result.imported) == ["run-1", "run-2", "run-3"] and result.already == []
    for run_id in ("run-1", "run-3"):
        assert _counts(store, run_id) == {"runs": 1, "generations": 2, "judgments": 1, "metrics": 1, "perplexity": 1,
                                          "golden_items": 1, "run_tags": 1, "run_golden_sets": 1}
    detail = read_run("run-3", store)
    assert detail.ideal_answers == {("g.jsonl", "i1"): "the ideal"}
    assert [p["loss"] for p in detail.training_curve] == [2.5, 1.5] and detail.training_method == "sft"
    assert detail.run.summary.judge_stats.win_rate == 0.75

    again = import_runs([first, second, tmp_path / "export"], store)
    assert again.imported == [] and sorted(again.already) == ["run-1", "run-2", "run-3"]
    assert sorted(r["run_id"] for r in list_runs(store)) == ["run-1", "run-2", "run-3"]
    assert _counts(store, "run-1")["generations"] == 2


def test_import_from_the_command_line_says_when_nothing_is_new(store, tmp_path):
    source = tmp_path / "ci.duckdb"
    save_run(_run("run-1"), source)
    proc = _evalhub("import", source, "--db", store)
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 run into" in proc.stdout
    proc = _evalhub("import", source, "--db", store)
    assert proc.returncode == 0 and "nothing to import" in proc.stdout and "1 already in the store" in proc.stdout
    password = urlsplit(store).password if store.startswith("postgresql://") else None
    assert not password or password not in proc.stdout + proc.stderr


def test_a_bad_source_is_one_line_and_nothing_is_imported(store, tmp_path):
    good = tmp_path / "ci.duckdb"
    save_run(_run("run-1"), good)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.duckdb").write_text("not a database")
    for bad, says in ((tmp_path / "missing.duckdb", "no such store file or export folder"),
                      (tmp_path / "empty", "not an evalhub export"),
                      (tmp_path / "notes.duckdb", "cannot open the store")):
        proc = _evalhub("import", good, bad, "--db", store)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    with pytest.raises(UserError):
        import_runs([good, tmp_path / "empty"], store)
    if store.endswith(".duckdb"):
        assert not Path(store).exists()  # the sources are checked before the store is even opened
    else:
        with pytest.raises(UserError, match="no evalhub store yet"):
            list_runs(store)


def _arena(run_id: str):
    """An arena of two served models: one pair, two items judged in both orders, their answers and items."""
    from evalhub.records import Generation, ModelRef
    from evalhub.store._arenas import ArenaRecord

    models = {name: ModelRef(model_id=f"served-{name}", kind="served", path=name) for name in ("m-a", "m-b")}
    judgments = [{"a": "m-a", "b": "m-b", "golden_file": "g.jsonl", "item_id": item, "a_position": position,
                  "judge": "reference", "raw_reply": "A", "status": "ok", "verdict": "win", "reason": None,
                  "prompt_tokens": None, "completion_tokens": None, "cost_usd": None, "is_canary": False}
                 for item in ("i1", "i2") for position in ("A", "B")]
    summary = {"run_id": run_id, "ratings": [{"model": "m-a", "rating": 1010.0, "ci": [1000.0, 1020.0], "rank": 1,
                                              "comparisons": 2},
                                             {"model": "m-b", "rating": 990.0, "ci": [980.0, 1000.0], "rank": 2,
                                              "comparisons": 2}],
               "pairs": [{"a": "m-a", "b": "m-b", "wins": 2, "losses": 0, "ties": 0, "win_rate": 1.0,
                          "win_rate_ci": [0.3, 1.0], "p_value": 0.5, "significant": False}]}
    generations = [(name, "g.jsonl", {"seed": 0}, Generation(item_id=item, prompt="p", output=f"{name} on {item}"))
                   for name in models for item in ("i1", "i2")]
    items = [{"golden_file": "g.jsonl", "item_id": item, "instruction": "p", "input": "", "output": "ideal",
              "tags": []} for item in ("i1", "i2")]
    return ArenaRecord(run_id=run_id, created_at="2026-01-02 00:00:00", judge="reference", golden=["g.jsonl"],
                       anchor=None, config={"seed": 0}, summary=summary, models=models, generations=generations,
                       judgments=judgments, golden_items=items)


def _arena_counts(db, run_id):
    with read_connection(db) as con:
        return {table: con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchall()[0][0]
                for table in ("arenas", "arena_models", "arena_pairs", "arena_judgments", "generations", "golden_items")}


def test_import_carries_arenas_from_store_files_and_export_folders_idempotently(store, tmp_path):
    from evalhub.store._arenas import arena_judgments, save_arena

    source = tmp_path / "arenas.duckdb"
    save_run(_run("run-1"), source)
    save_arena(_arena("arena-1"), source)
    save_arena(_arena("arena-2"), source)
    other = tmp_path / "other.duckdb"
    save_arena(_arena("arena-3"), other)
    export_parquet("all", tmp_path / "export", other)
    assert (tmp_path / "export" / "arenas.parquet").is_file()
    whole = {"arenas": 1, "arena_models": 2, "arena_pairs": 1, "arena_judgments": 4, "generations": 4,
             "golden_items": 2}

    result = import_runs([source, tmp_path / "export"], store)
    assert result.imported == ["run-1"] and sorted(result.arenas_imported) == ["arena-1", "arena-2", "arena-3"]
    for arena_id in ("arena-1", "arena-2", "arena-3"):
        assert _arena_counts(store, arena_id) == whole
    assert arena_judgments("arena-3", store) == arena_judgments("arena-3", other)

    again = import_runs([source, tmp_path / "export"], store)
    assert again.imported == again.arenas_imported == []
    assert sorted(again.arenas_already) == ["arena-1", "arena-2", "arena-3"]
    assert _arena_counts(store, "arena-1") == whole


def test_import_from_the_command_line_names_each_source_given(store, tmp_path):
    from evalhub.store._arenas import save_arena

    source = tmp_path / "ci.duckdb"
    save_run(_run("run-1"), source)
    save_arena(_arena("arena-1"), source)
    proc = _evalhub("import", source, source, "--db", store)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{source}:")]
    assert lines == [f"{source}: 1 new run, 1 new arena", f"{source}: 0 new runs"], proc.stderr
    assert "imported 1 run and 1 arena into" in proc.stdout
    proc = _evalhub("import", source, "--db", store)
    assert proc.returncode == 0 and "nothing to import" in proc.stdout and "2 already in the store" in proc.stdout
