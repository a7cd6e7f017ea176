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
