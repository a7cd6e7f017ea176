"""`evalhub compare` end to end on the toy world: the summary, the store, the report, resume, bad input."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from tests.fake_openai import FakeOpenAI, completion

JUDGE_STATS_KEYS = {"n", "wins", "losses", "ties", "scored", "unscored", "win_rate", "win_rate_ci", "p_value",
                    "parse_failures", "position_consistency", "lc_win_rate", "canary_accuracy", "judge_calls", "cost_usd",
                    "sc_win_rate", "by_tag", "identical_pairs", "protocol", "inconsistent", "mde"}


def test_demo_summary_has_exactly_the_documented_keys(demo_run):
    summary = demo_run["summary"]
    assert set(summary) == {"run_id", "base", "tuned", "judge", "golden", "judge_stats", "perplexity", "benchmarks"}
    assert set(summary["judge_stats"]) == JUDGE_STATS_KEYS
    assert set(summary["perplexity"]) == {"general", "domain"}
    for entry in summary["perplexity"].values():
        assert set(entry) == {"base", "tuned", "delta_pct", "bpb_base", "bpb_tuned"}
    assert set(summary["benchmarks"]["toy_general"]) == {"base", "tuned", "delta", "ci", "p_value", "forgetting"}
    assert summary["judge"] == "reference" and "reference judge" in demo_run["stderr"]


def test_demo_tuned_model_wins_its_domain(demo_run):
    summary = demo_run["summary"]
    stats = summary["judge_stats"]
    assert stats["n"] == 100 and stats["scored"] + stats["unscored"] == 100
    assert stats["win_rate"] > 0.8 and stats["win_rate_ci"][0] > 0.5 and stats["p_value"] < 0.01
    # The adapter learned the domain: its domain text is far less surprising than to the base.
    assert summary["perplexity"]["domain"]["tuned"] < summary["perplexity"]["domain"]["base"]
    assert summary["benchmarks"]["toy_general"]["base"] >= 0.8
    assert "win rate" in demo_run["stdout"]


def test_demo_run_is_stored_whole_and_reported(demo_run):
    run_id = demo_run["summary"]["run_id"]
    with duckdb.connect(str(demo_run["db"]), read_only=True) as con:
        def count(table):
            return con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]

        assert count("runs") == 1
        assert count("generations") == 200
        assert con.execute("SELECT count(*) FROM judgments WHERE run_id = ? AND NOT is_canary", [run_id]).fetchone()[0] == 200
        assert count("perplexity") == 4 and count("benchmarks") == 1
        assert count("benchmark_items") == 72
        config = json.loads(con.execute("SELECT config FROM runs").fetchone()[0])
        assert {"torch", "transformers", "lm_eval", "duckdb"} <= set(config["versions"])
        statuses = {row[0] for row in con.execute("SELECT DISTINCT json_extract_string(settings, '$.temperature') FROM generations").fetchall()}
        assert statuses == {"0.0"}
    assert (demo_run["reports"] / f"{run_id}.html").exists() and (demo_run["reports"] / f"{run_id}.md").exists()
    assert not (demo_run["root"] / ".evalhub-work").exists() or not any((demo_run["root"] / ".evalhub-work").iterdir())


def test_gate_on_the_demo_run(demo_run, tmp_path):
    def gate(*args):
        return subprocess.run([sys.executable, "-m", "evalhub", "gate", "latest", "--db", str(demo_run["db"]), *args],
                              capture_output=True, text=True, cwd=tmp_path)

    assert gate("--min-win-rate", "0.6", "--junit", str(tmp_path / "g.xml")).returncode == 0
    assert gate("--max-forgetting", "0.02").returncode == 1  # the demo's adapter forgets general facts
    assert (tmp_path / "g.xml").exists()


# ---------------------------------------------------------------- resume after a kill

def _verdict(body: dict) -> str:
    """A deterministic fake judge: the verdict is a function of the prompt (less its per-call random fence
    marker), so two runs agree exactly."""
    prompt = re.sub(r"[0-9a-f]{16}", "MARKER", json.dumps(body["messages"], sort_keys=True))
    digest = hashlib.sha256(prompt.encode()).digest()[0]
    return json.dumps({"verdict": "AB"[digest % 2] if digest % 5 else "tie", "reason": "scripted"})


def _compare(toy_world, toy_manifest, toy_adapter, root: Path, server, *extra, wait=True):
    root.mkdir(parents=True, exist_ok=True)
    env = {**__import__("os").environ, "OPENAI_API_KEY": "sk-test-secret", "EVALHUB_CACHE": str(root / "cache")}
    command = [sys.executable, "-m", "evalhub", "compare", str(toy_world / "base"), str(toy_adapter),
               "--golden", str(toy_world / toy_manifest["golden"]), "--judge", "openai:fake-judge",
               "--judge-base-url", server.base_url, "--judge-concurrency", "2", "--backend", "hf",
               "--db", str(root / "evalhub.duckdb"), "--report-dir", str(root / "reports"),
               "--json", str(root / "summary.json"), *extra]
    if wait:
        return subprocess.run(command, capture_output=True, text=True, cwd=root, env=env, timeout=600)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root, env=env)


def _judgments(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT golden_file, item_id, tuned_position, status, verdict FROM judgments "
                           "ORDER BY item_id, tuned_position").fetchall()


@pytest.mark.slow
def test_killed_compare_resumes_to_the_uninterrupted_result(toy_world, toy_manifest, toy_adapter, tmp_path):
    def reply(body):
        return replace(completion(_verdict(body), body), delay=0.05)

    with FakeOpenAI(reply=reply) as server:
        reference = _compare(toy_world, toy_manifest, toy_adapter, tmp_path / "once", server)
        assert reference.returncode == 0, reference.stderr[-3000:]
        uninterrupted_calls = len(server.chat_requests)
    assert uninterrupted_calls == 200

    killed_root = tmp_path / "killed"
    with FakeOpenAI(reply=reply) as server:
        proc = _compare(toy_world, toy_manifest, toy_adapter, killed_root, server, wait=False)
        deadline = time.monotonic() + 300
        while len(server.chat_requests) < 60 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
        calls_before_kill = len(server.chat_requests)
        assert 60 <= calls_before_kill < 200
        assert not _store_has_runs(killed_root / "evalhub.duckdb")
        resumed = _compare(toy_world, toy_manifest, toy_adapter, killed_root, server)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        calls_after = len(server.chat_requests) - calls_before_kill
    assert "resuming run" in resumed.stderr and "generations: done in an earlier attempt" in resumed.stderr
    # Only calls in flight at the kill (at most the concurrency, 2) may be made twice.
    assert calls_after <= 200 - calls_before_kill + 2
    once = json.loads((tmp_path / "once" / "summary.json").read_text())
    again = json.loads((killed_root / "summary.json").read_text())
    for summary in (once, again):
        summary.pop("run_id")
        summary["judge_stats"].pop("judge_calls")
    assert again == once
    assert _judgments(killed_root / "evalhub.duckdb") == _judgments(tmp_path / "once" / "evalhub.duckdb")
    # The API key never reaches the store or the report.
    assert b"sk-test-secret" not in (killed_root / "evalhub.duckdb").read_bytes()
    assert all("sk-test-secret" not in p.read_text() for p in (killed_root / "reports").iterdir())


def _store_has_runs(db: Path) -> bool:
    if not db.exists():
        return False
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0


# ---------------------------------------------------------------- bad input

def _bad(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in __import__("os").environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "evalhub", "compare", *args, "--db", str(tmp_path / "s.duckdb"),
                           "--report-dir", str(tmp_path / "reports")],
                          capture_output=True, text=True, cwd=tmp_path, env={**environment, **(env or {})}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert not (tmp_path / "s.duckdb").exists() and not (tmp_path / ".evalhub-work").exists()
    return proc


def test_bad_inputs_fail_in_one_line_and_leave_nothing(toy_world, toy_manifest, toy_adapter, tmp_path):
    base, golden = str(toy_world / "base"), str(toy_world / toy_manifest["golden"])
    assert "config.json" in _bad(tmp_path, str(tmp_path / "no-model"), str(toy_adapter), "--golden", golden,
                                 "--judge", "reference").stderr

    other = tmp_path / "other-adapter"
    shutil.copytree(toy_adapter, other)
    config = json.loads((other / "adapter_config.json").read_text())
    (other / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/models/llama-70b"}))
    assert "trained on /models/llama-70b" in _bad(tmp_path, base, str(other), "--golden", golden, "--judge", "reference").stderr

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "1", "instruction": "a", "output": "b"}\n{"id": "2", "instruction": \n')
    assert f"{broken}:2" in _bad(tmp_path, base, str(toy_adapter), "--golden", str(broken), "--judge", "reference").stderr
    assert "no such golden set" in _bad(tmp_path, base, str(toy_adapter), "--golden", str(tmp_path / "x.jsonl"),
                                        "--judge", "reference").stderr
    assert "--judge reference" in _bad(tmp_path, base, str(toy_adapter), "--golden", golden).stderr
    unreachable = _bad(tmp_path, base, str(toy_adapter), "--golden", golden, "--judge", "openai:gpt-4.1",
                       "--judge-base-url", "http://127.0.0.1:9/v1", env={"OPENAI_API_KEY": "sk-x"})
    assert "127.0.0.1:9" in unreachable.stderr


def test_runs_show_and_parquet_export_of_the_demo_run(demo_run, tmp_path):
    import pyarrow.parquet as pq

    def evalhub(*args):
        proc = subprocess.run([sys.executable, "-m", "evalhub", *args, "--db", str(demo_run["db"])],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run_id = demo_run["summary"]["run_id"]
    assert run_id in evalhub("runs") and run_id in evalhub("runs", "--json")
    assert json.loads(evalhub("show", run_id[:12], "--json")) == demo_run["summary"]
    evalhub("export", run_id, "--parquet", str(tmp_path / "parquet"))
    assert pq.read_table(tmp_path / "parquet" / "generations.parquet").num_rows == 200
    assert pq.read_table(tmp_path / "parquet" / "runs.parquet").column("run_id").to_pylist() == [run_id]
    golden_items = pq.read_table(tmp_path / "parquet" / "golden_items.parquet")
    assert golden_items.num_rows == 100 and set(golden_items.column("run_id").to_pylist()) == {run_id}
