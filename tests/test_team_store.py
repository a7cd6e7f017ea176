"""The team store: many writers on one PostgreSQL store (a real server started by the tests), a killed
writer leaving nothing, readers that never block writers, the gate and compare on PostgreSQL, and one-line
errors for a bad URL, a wrong password or a server that is down."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from evalhub.store import list_runs, read_connection, read_leaderboard, save_run

WRITERS, RUNS_EACH = 4, 8


def _record(run_id: str):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from app_reads import _run  # a run of 100 items: 200 generations, 200 judge calls

    record = _run(int(run_id.rsplit("-", 1)[1]), "golden.jsonl")
    record.run_id = run_id
    return record


def _write_runs(url: str, writer: int, start) -> None:
    start.wait(60)
    for index in range(RUNS_EACH):
        save_run(_record(f"w{writer}-{writer * 100 + index}"), url)


def _read_forever(url: str, stop, reads) -> None:
    while not stop.is_set():
        try:
            read_leaderboard(url)
            reads.value += 1
        except Exception:  # noqa: BLE001 - before the first write the database holds no store yet
            pass


def _whole(url: str) -> dict[str, tuple]:
    with read_connection(url) as con:
        return {row[0]: tuple(row[1:]) for row in con.execute(
            "SELECT r.run_id, (SELECT count(*) FROM generations g WHERE g.run_id = r.run_id), "
            "(SELECT count(*) FROM judgments j WHERE j.run_id = r.run_id), "
            "(SELECT count(*) FROM run_golden_sets s WHERE s.run_id = r.run_id) FROM runs r").fetchall()}


def test_four_writers_at_once_store_every_run_whole_while_the_app_reads(pg_url):
    spawn = multiprocessing.get_context("spawn")
    start, stop = spawn.Event(), spawn.Event()
    reads = spawn.Value("i", 0)
    reader = spawn.Process(target=_read_forever, args=(pg_url, stop, reads))
    writers = [spawn.Process(target=_write_runs, args=(pg_url, w, start)) for w in range(WRITERS)]
    reader.start()
    for writer in writers:
        writer.start()
    start.set()  # all four meet an empty database: the first writes race to migrate it
    for writer in writers:
        writer.join(300)
    stop.set()
    reader.join(60)
    assert [w.exitcode for w in writers] == [0] * WRITERS
    runs = _whole(pg_url)
    assert len(runs) == WRITERS * RUNS_EACH
    assert set(runs.values()) == {(200, 200, 1)}
    assert reads.value > 0  # the reader kept reading while the writers wrote, and none of them waited on it
    assert read_leaderboard(pg_url).run_count == WRITERS * RUNS_EACH


def _save_then_hang(url: str, ready) -> None:
    """The real save_run, held just before its commit (the run's rows all written in its transaction)."""
    import time

    from evalhub.store import _runs

    def hang(con, run_ids):
        ready.set()
        time.sleep(600)

    _runs.record_golden_sets = hang
    save_run(_record("killed-1"), url)


def test_a_writer_killed_mid_save_leaves_nothing_of_its_run(pg_url):
    save_run(_record("kept-1"), pg_url)
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    writer = spawn.Process(target=_save_then_hang, args=(pg_url, ready))
    writer.start()
    assert ready.wait(120)
    assert [r["run_id"] for r in list_runs(pg_url)] == ["kept-1"]  # uncommitted rows are invisible to readers
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(30)
    save_run(_record("after-2"), pg_url)  # no lock outlives the killed writer
    runs = _whole(pg_url)
    assert sorted(runs) == ["after-2", "kept-1"] and set(runs.values()) == {(200, 200, 1)}
    with read_connection(pg_url) as con:
        for table in ("generations", "judgments", "golden_items", "metrics"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE run_id = 'killed-1'").fetchall()[0][0] == 0


def _evalhub(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "evalhub", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


def test_bad_url_wrong_password_or_server_down_is_one_line_without_the_password(pg_server, pg_url, tmp_path):
    wrong = pg_url.replace(pg_server.password, "not-the-password-42")
    down = f"postgresql://postgres:hunter2-secret@127.0.0.1:{_closed_port()}/evalhub"
    cases = [(wrong, "password authentication failed", "not-the-password-42"),
             (down, "check that the server is running", "hunter2-secret"),
             ("postgresql://postgres:pw-in-url-7@127.0.0.1:notaport/x", "port is not a number", "pw-in-url-7"),
             ("mysql://root:pw-mysql-9@127.0.0.1/x", "only DuckDB files and postgresql:// URLs", "pw-mysql-9")]
    for url, says, password in cases:
        for command in (("runs",), ("gate", "latest", "--min-win-rate", "0.5"), ("show", "latest"),
                        ("import", tmp_path / "none.duckdb"), ("app", "--port", "8599")):
            proc = _evalhub(*command, "--db", url)
            output = proc.stdout + proc.stderr
            assert proc.returncode == 2, (command, output)
            assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, output
            assert says in proc.stderr and password not in output and "Traceback" not in output
    # EVALHUB_DB takes a URL too; the password may also come from PGPASSWORD.
    save_run(_record("run-7"), pg_url)
    bare = pg_url.replace(f":{pg_server.password}@", "@")
    proc = _evalhub("runs", "--json", env={"EVALHUB_DB": bare, "PGPASSWORD": pg_server.password})
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["run_id"] for line in proc.stdout.splitlines()] == ["run-7"]


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gate_reads_a_postgresql_store(pg_url, tmp_path):
    save_run(_record("run-3"), pg_url)  # p_win 0.54
    passed = _evalhub("gate", "latest", "--min-win-rate", "0.5", "--db", pg_url, "--junit", tmp_path / "gate.xml")
    assert passed.returncode == 0, passed.stderr
    assert "gate passed for run run-3" in passed.stdout
    failed = _evalhub("gate", "run-3", "--min-win-rate", "0.6", "--db", pg_url)
    assert failed.returncode == 1 and "FAILED" in failed.stdout
    shown = _evalhub("show", "latest", "--json", "--db", pg_url)
    assert json.loads(shown.stdout)["judge_stats"]["win_rate"] == pytest.approx(0.54)
    assert urlsplit(pg_url).password not in passed.stdout + passed.stderr + shown.stdout + shown.stderr


# ---------------------------------------------------------------- real compares writing to one database

@pytest.fixture(scope="module")
def four_compares(tmp_path_factory, pg_server, toy_world: Path, toy_manifest: dict, toy_adapter: Path) -> dict:
    """Four real `evalhub compare` processes at once, each on three golden items of its own, all writing to one
    PostgreSQL database that none of them has seen before."""
    url = pg_server.new_database()
    root = tmp_path_factory.mktemp("four-compares")
    items = [json.loads(line) for line in (toy_world / toy_manifest["golden"]).read_text().splitlines() if line.strip()]
    procs = []
    for n in range(4):
        folder = root / f"ci-{n}"
        folder.mkdir()
        golden = folder / f"golden-{n}.jsonl"
        golden.write_text("".join(json.dumps(item) + "\n" for item in items[3 * n:3 * n + 3]))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "evalhub", "compare", str(toy_world / toy_manifest["base"]), str(toy_adapter),
             "--golden", str(golden), "--judge", "reference", "--backend", "hf", "--max-new-tokens", "8",
             "--db", url, "--json", str(folder / "summary.json"), "--report-dir", str(folder / "reports")],
            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(proc.wait(900), *proc.communicate()) for proc in procs]
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    return {"url": url, "root": root, "results": results, "password": pg_server.password,
            "summaries": [json.loads((root / f"ci-{n}" / "summary.json").read_text()) for n in range(4)]}


def test_four_concurrent_compares_store_four_whole_runs(four_compares):
    url = four_compares["url"]
    runs = {r["run_id"]: r for r in list_runs(url)}
    assert sorted(runs) == sorted(s["run_id"] for s in four_compares["summaries"])
    with read_connection(url) as con:
        for summary in four_compares["summaries"]:
            run_id = summary["run_id"]
            count = lambda sql: con.execute(sql, [run_id]).fetchall()[0][0]  # noqa: E731
            assert count("SELECT count(*) FROM generations WHERE run_id = ?") == 6
            assert count("SELECT count(*) FROM judgments WHERE run_id = ? AND NOT is_canary") == 6
            assert count("SELECT count(*) FROM golden_items WHERE run_id = ?") == 3
            assert runs[run_id]["summary"].judge_stats.n == 3
    for code, stdout, stderr in four_compares["results"]:
        assert four_compares["password"] not in stdout + stderr
        assert "stored run" in stderr and "postgresql://postgres@127.0.0.1" in stderr
    # The leaderboard reads them, aggregated in the database.
    data = read_leaderboard(url)
    assert data.run_count == 4 and len(data.golden_sets) == 4
    assert sum(p.wins + p.ties + p.losses for p in data.pairs) == sum(
        s["judge_stats"]["scored"] for s in four_compares["summaries"])


def _sql_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "docs" / "team.md").read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```sql\n")[1:]]


def test_the_documented_roles_let_ci_insert_and_the_app_only_read(pg_server):
    import psycopg

    from evalhub.errors import UserError

    server_sql, database_sql = _sql_blocks()
    with psycopg.connect(pg_server.url(), autocommit=True) as con:
        for statement in filter(str.strip, server_sql.split(";")):
            con.execute(statement)
    owner = f"postgresql://evalhub_owner:change-me-owner@127.0.0.1:{pg_server.port}/evalhub"
    with psycopg.connect(owner, autocommit=True) as con:
        for statement in filter(str.strip, database_sql.split(";")):
            con.execute(statement)
    migrated = _evalhub("migrate", "--db", owner)
    assert migrated.returncode == 0 and "at schema" in migrated.stdout, migrated.stderr
    assert "change-me-owner" not in migrated.stdout + migrated.stderr

    ci = owner.replace("evalhub_owner:change-me-owner", "evalhub_ci:change-me-ci")
    app = owner.replace("evalhub_owner:change-me-owner", "evalhub_app:change-me-app")
    save_run(_record("ci-1"), ci)
    assert _evalhub("gate", "latest", "--min-win-rate", "0.1", "--db", ci).returncode == 0
    assert read_leaderboard(app).run_count == 1
    with pytest.raises(UserError, match="refused this user"):
        save_run(_record("app-2"), app)
    assert [r["run_id"] for r in list_runs(app)] == ["ci-1"]


def _app_banner(*args) -> str:
    """The lines `evalhub app` prints before it becomes the Streamlit server (then stopped)."""
    proc = subprocess.Popen([sys.executable, "-m", "evalhub", "app", *map(str, args)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "Ctrl+C stops it" in line:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    return "".join(lines)


def test_the_app_binds_to_loopback_and_warns_when_told_to_listen_elsewhere(pg_url):
    save_run(_record("run-1"), pg_url)
    password = urlsplit(pg_url).password
    port = _closed_port()
    local = _app_banner("--db", pg_url, "--port", port)
    assert f"http://127.0.0.1:{port}" in local and "warning" not in local
    assert "postgresql://postgres@127.0.0.1" in local and password not in local
    exposed = _app_banner("--db", pg_url, "--port", _closed_port(), "--host", "0.0.0.0")
    assert "warning: listening on 0.0.0.0" in exposed and "reverse proxy" in exposed and password not in exposed


def _record_training(url: str, writer: int, start) -> None:
    from evalhub.store import save_training_run

    start.wait(60)
    for _ in range(3):
        save_training_run("same-adapter", f"/ci-{writer}/adapter", "sft", {"writer": writer},
                          [{"step": step, "split": "train", "loss": 1.0 / (step + 1)} for step in range(20)], url)


def test_writers_recording_one_adapters_training_at_once_take_turns(pg_url):
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    writers = [spawn.Process(target=_record_training, args=(pg_url, w, start)) for w in range(WRITERS)]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(120)
    assert [w.exitcode for w in writers] == [0] * WRITERS
    with read_connection(pg_url) as con:
        assert con.execute("SELECT count(*) FROM training_curves").fetchall()[0][0] == 20
        assert con.execute("SELECT count(*) FROM training_runs").fetchall()[0][0] == 1
