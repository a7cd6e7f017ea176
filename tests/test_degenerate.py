"""Every command through the degenerate cases: nothing scored, everything failed, empty inputs, bad arguments,
bad output paths, odd stores, an interrupted run. Each ends in a clean result or one `error:` line (exit 2),
never a traceback, and nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.fake_openai import FakeOpenAI

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def evalhub(*args, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalhub", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**ENV, **(env or {})}, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The command failed with exit 2 and one `error:` line (and no traceback) holding every word."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]


# ---------------------------------------------------------------- runs in which nothing could be scored

@pytest.fixture(scope="module")
def small_golden(tmp_path_factory, toy_world: Path, toy_manifest: dict) -> Path:
    rows = [json.loads(line) for line in (toy_world / toy_manifest["golden"]).read_text().splitlines()[:4]]
    path = tmp_path_factory.mktemp("golden") / "four.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def unscored_store(tmp_path_factory, toy_world: Path, toy_manifest: dict, toy_adapter: Path, small_golden: Path) -> dict:
    """Two real runs in one store: a judge whose every reply is unreadable, and a golden set none of whose
    prompts fits the context (every generation fails)."""
    root = tmp_path_factory.mktemp("unscored")
    db = root / "evalhub.duckdb"
    base = toy_world / toy_manifest["base"]
    common = ["--backend", "hf", "--max-new-tokens", "8", "--db", db, "--report-dir", root / "reports"]
    with FakeOpenAI(reply=lambda body: "I cannot decide, both are fine.") as server:
        unreadable = evalhub("compare", base, toy_adapter, "--golden", small_golden, "--judge", "openai:fake-judge",
                             "--judge-base-url", server.base_url, "--json", root / "unreadable.json", *common,
                             cwd=root, env={"EVALHUB_CACHE": str(root / "cache")})
    too_long = root / "too-long.jsonl"
    too_long.write_text("".join(json.dumps({"id": f"long-{i}", "instruction": "word " * 5000, "output": "x"}) + "\n"
                                for i in range(3)))
    failed = evalhub("compare", base, toy_adapter, "--golden", too_long, "--judge", "reference",
                     "--json", root / "failed.json", *common, cwd=root)
    return {"root": root, "db": db, "unreadable": unreadable, "failed": failed,
            "unreadable_summary": json.loads((root / "unreadable.json").read_text()) if unreadable.returncode == 0 else None,
            "failed_summary": json.loads((root / "failed.json").read_text()) if failed.returncode == 0 else None}


def test_a_run_whose_judge_replies_are_all_unreadable_completes_stored_and_warned(unscored_store):
    proc = unscored_store["unreadable"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    no_traceback(proc)
    stats = unscored_store["unreadable_summary"]["judge_stats"]
    assert stats["n"] == 4 and stats["scored"] == 0 and stats["parse_failures"] == 8
    assert stats["win_rate"] is None and stats["win_rate_ci"] is None and stats["lc_win_rate"] is None
    warnings = [line for line in proc.stderr.splitlines() if "warning: no item could be scored" in line]
    assert len(warnings) == 1 and "judge replies could not be read" in warnings[0]
    assert "–" in proc.stdout  # the summary table shows the missing win rate as a dash


def test_a_run_whose_generations_all_failed_completes_and_says_why(unscored_store):
    proc = unscored_store["failed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    no_traceback(proc)
    stats = unscored_store["failed_summary"]["judge_stats"]
    assert stats["n"] == 3 and stats["scored"] == 0 and stats["win_rate"] is None
    # The items set aside for the context are named on the console, then the unscored run.
    assert "3 of 3 base answers failed" in proc.stderr and "context" in proc.stderr
    assert "every item has a failed generation" in proc.stderr


def test_runs_show_and_export_read_an_unscored_store(unscored_store):
    root, db = unscored_store["root"], unscored_store["db"]
    listing = evalhub("runs", "--db", db, cwd=root)
    assert listing.returncode == 0, listing.stderr
    no_traceback(listing)
    assert listing.stdout.count("–") >= 2
    lines = evalhub("runs", "--db", db, "--json", cwd=root)
    assert [json.loads(line)["summary"]["judge_stats"]["win_rate"] for line in lines.stdout.splitlines()] == [None, None]
    run_id = unscored_store["unreadable_summary"]["run_id"]
    shown = evalhub("show", run_id, "--db", db, cwd=root)
    assert shown.returncode == 0 and "0 of 4 scored" in shown.stdout, shown.stderr
    as_json = evalhub("show", run_id, "--db", db, "--json", cwd=root)
    assert json.loads(as_json.stdout)["judge_stats"]["win_rate"] is None
    exported = evalhub("export", run_id, "--parquet", root / "parquet", "--db", db, cwd=root)
    assert exported.returncode == 0, exported.stderr
    assert (root / "parquet" / "runs.parquet").is_file()
    report = (root / "reports" / f"{run_id}.md").read_text()
    assert "**–**" in report and "0 of 4 items scored" in report and "warning" in report


def test_the_gate_fails_an_unscored_run_saying_nothing_was_scored(unscored_store):
    root, db = unscored_store["root"], unscored_store["db"]
    run_id = unscored_store["unreadable_summary"]["run_id"]
    gate = evalhub("gate", run_id, "--min-win-rate", "0.5", "--min-position-consistency", "0.5",
                   "--junit", root / "gate.xml", "--json", root / "gate.json", "--db", db, cwd=root)
    assert gate.returncode == 1, gate.stderr
    no_traceback(gate)
    assert "0 of 4 items scored" in gate.stderr
    result = json.loads((root / "gate.json").read_text())
    assert [c["passed"] for c in result["checks"]] == [False, False] and result["checks"][0]["value"] is None
    assert "0 of 4 items scored" in (root / "gate.xml").read_text()


def test_compare_with_gate_on_an_unscored_run_exits_1(unscored_store, toy_world, toy_manifest, toy_adapter,
                                                      small_golden):
    # An unreadable judge again (on a new port, so a new cache endpoint), now with a gate: it fails, saying why.
    root = unscored_store["root"]
    with FakeOpenAI(reply=lambda body: "no idea") as server:
        proc = evalhub("compare", toy_world / toy_manifest["base"], toy_adapter, "--golden", small_golden,
                       "--judge", "openai:fake-judge", "--judge-base-url", server.base_url, "--backend", "hf",
                       "--max-new-tokens", "8", "--db", root / "gated.duckdb", "--report-dir", root / "reports",
                       "--min-win-rate", "0.5", cwd=root, env={"EVALHUB_CACHE": str(root / "cache")})
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "gate FAIL: min_win_rate = – (threshold 0.5) (0 of 4 items scored)" in proc.stderr


# ---------------------------------------------------------------- bad input, checked before anything is spent

@pytest.fixture(scope="module")
def workspace(tmp_path_factory, toy_world: Path, toy_manifest: dict, toy_adapter: Path) -> dict:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "a-folder").mkdir()
    (root / "a-file.txt").write_text("not a folder\n")
    (root / "empty.jsonl").write_text("")
    (root / "empty.txt").write_text("  \n")
    (root / "list-instruction.jsonl").write_text(json.dumps({"id": "q", "instruction": ["a"], "output": "b"}) + "\n")
    (root / "dup-a.jsonl").write_text(json.dumps({"id": "same", "instruction": "a", "output": "b"}) + "\n")
    (root / "dup-b.jsonl").write_text(json.dumps({"id": "same", "instruction": "c", "output": "d"}) + "\n")
    other = root / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    future = root / "future.duckdb"
    from evalhub.store import write_connection

    with write_connection(future) as con:
        con.execute("INSERT INTO schema_version (version) VALUES (99)")
    return {"root": root, "base": toy_world / toy_manifest["base"], "golden": toy_world / toy_manifest["golden"],
            "adapter": toy_adapter}


BAD_INPUT = [
    # (arguments, words the one error line must hold); {base}, {adapter}, {golden}, {root} are filled in
    (["compare", "{base}", "{base}", "--backend", "foo"], ["--backend", "'auto'"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--temperature", "-1"], ["--temperature"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--top-p", "5"], ["--top-p"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--max-new-tokens", "0"], ["--max-new-tokens"]),
    (["compare", "{base}", "{base}", "--perplexity-data", "g={golden}", "--window", "0"], ["--window"]),
    (["compare", "{base}", "{base}", "--perplexity-data", "g={golden}", "--stride", "-1"], ["--stride"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--max-cost", "-5"], ["--max-cost"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge-concurrency", "0"], ["--judge-concurrency"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--canaries", "-3"], ["--canaries"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--concurrency", "0"], ["--concurrency"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge-timeout", "0"], ["--judge-timeout"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--min-win-rate", "7"], ["--min-win-rate"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--min-win-rate", "nan"], ["--min-win-rate", "finite"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge", "reference", "--judge", "reference"],
     ["--judge", "twice"]),
    (["compare", "{base}", "{base}", "--perplexity-data", "g={golden}", "--perplexity-data", "g={golden}"],
     ["--perplexity-data", "twice"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--golden", "{golden}"], ["--golden", "twice"]),
    (["compare", "{base}", "{base}", "--golden", "{root}/dup-a.jsonl", "--golden", "{root}/dup-b.jsonl", "--judge",
      "reference"], ["'same'", "dup-a.jsonl", "dup-b.jsonl"]),
    (["compare", "{base}", "{base}", "--golden", "{root}/a-folder", "--judge", "reference"], ["a-folder", "folder"]),
    (["compare", "{base}", "{base}", "--golden", "{root}/empty.jsonl", "--judge", "reference"], ["empty"]),
    (["compare", "{base}", "{base}", "--golden", "{root}/list-instruction.jsonl", "--judge", "reference"],
     ["list-instruction.jsonl:1", "'instruction'", "string"]),
    (["compare", "{base}", "{base}", "--perplexity-data", "e={root}/empty.txt"], ["--perplexity-data e", "no text"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge", "reference", "--json", "{root}/a-folder"],
     ["--json", "folder"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge", "reference", "--report-dir", "{root}/a-file.txt"],
     ["--report-dir", "is a file"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge", "reference", "--junit", "{root}/a-file.txt/x.xml"],
     ["--junit", "not a folder"]),
    (["compare", "{base}", "{base}", "--golden", "{golden}", "--judge", "reference", "--db", "{root}/a-folder"],
     ["--db", "folder"]),
    (["runs", "--db", "{root}/other.duckdb"], ["not an evalhub store"]),
    (["runs", "--db", "{root}/future.duckdb"], ["newer evalhub", "upgrade"]),
    (["show", "latest", "--db", "{root}/missing.duckdb"], ["no store"]),
    (["gate", "latest", "--min-win-rate", "0.5", "--db", "{root}/future.duckdb"], ["newer evalhub"]),
    (["gate", "latest", "--min-win-rate", "0.5", "--json", "{root}/a-folder", "--db", "{root}/missing.duckdb"],
     ["--json", "folder"]),
    (["gate", "latest", "--min-win-rate", "inf", "--db", "{root}/missing.duckdb"], ["--min-win-rate"]),
    (["export", "all", "--parquet", "{root}/out-missing", "--db", "{root}/missing.duckdb"], ["no store"]),
    (["export", "all", "--parquet", "{root}", "--db", "{root}/missing.duckdb"], ["--parquet", "not empty"]),
    (["export", "all", "--parquet", "{root}/a-file.txt", "--db", "{root}/missing.duckdb"], ["--parquet", "is a file"]),
    (["runs", "--db", "{root}/a-file.txt"], ["a-file.txt"]),
    (["perplexity", "{base}", "--data", "{root}/empty.txt"], ["empty.txt", "no text"]),
    (["perplexity", "{base}", "--data", "{root}/a-file.txt", "--json", "{root}/a-folder"], ["--json", "folder"]),
    (["perplexity", "{base}", "--data", "{root}/a-file.txt", "--window", "0"], ["--window"]),
    (["bench", "{base}", "--tasks", "x", "--json", "{root}/a-folder"], ["--json", "folder"]),
    (["bench", "{base}", "--tasks", "no_such_task", "--tasks-path", "{root}/a-folder"], ["no_such_task"]),
    (["merge", "{base}", "{root}/a-folder", "{root}/merged"], ["adapter_config.json"]),
    (["merge", "{base}", "{adapter}", "{root}/a-file.txt"], ["a-file.txt"]),
    (["toy", "build", "--out", "{root}/a-file.txt"], ["a-file.txt", "--out"]),
    (["golden", "validate", "{root}/empty.jsonl"], ["empty"]),
    (["golden", "validate", "{root}/a-folder"], ["folder"]),
    (["app", "--port", "-1"], ["--port"]),
    (["app", "--port", "70000"], ["--port"]),
    (["train", "sft", "--config", "{root}/no-such.yaml"], ["no-such.yaml", "toy_sft"]),
    (["train", "sft", "--config", "toy_sft", "--output", "{root}/a-file.txt"], ["a-file.txt"]),
    (["serve", "{base}", "--adapter", "x={root}/a-folder"], ["a-folder"]),
]


@pytest.mark.parametrize("args,words", BAD_INPUT, ids=[" ".join(a[:1] + [w for w in a if w.startswith("--")][:2])
                                                      for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_before_any_work(workspace, args, words):
    root = workspace["root"]
    filled = [a.format(base=workspace["base"], adapter=workspace["adapter"], golden=workspace["golden"], root=root)
              for a in args]
    before = sorted(p.name for p in root.iterdir())
    proc = evalhub(*filled, cwd=root, timeout=120)
    one_line_error(proc, *words)
    # Nothing written: no store, no report, no export folder, no work folder.
    assert sorted(p.name for p in root.iterdir()) == before
    assert "loading" not in proc.stderr.lower()


def test_help_texts_keep_their_brackets(workspace):
    proc = evalhub("gate", "--help", cwd=workspace["root"])
    assert "[gate] table" in " ".join(proc.stdout.split())


# ---------------------------------------------------------------- work folders and interrupts

def test_a_work_folder_of_another_format_is_one_line(tmp_path, toy_world, toy_manifest, toy_adapter, small_golden):
    args = ["compare", toy_world / toy_manifest["base"], toy_adapter, "--golden", small_golden, "--judge", "reference",
            "--backend", "hf", "--max-new-tokens", "4", "--db", tmp_path / "e.duckdb", "--report-dir", tmp_path / "r"]
    # The work folder an older evalhub would have left for this very command: no work format in meta.json.
    from evalhub.contracts import build, CompareRequest
    from evalhub.models import describe_models
    from evalhub.workdir import open_work_folder, run_config

    request = build(CompareRequest, base=str(toy_world / toy_manifest["base"]), tuned=str(toy_adapter),
                    golden=(str(small_golden),), judge="reference", backend="hf", decoding={"max_new_tokens": 4})
    work = open_work_folder(tmp_path / "e.duckdb", run_config(request, *describe_models(request.base, request.tuned),
                                                              "reference"), None, lambda message: None)
    meta = json.loads((work.path / "meta.json").read_text())
    (work.path / "meta.json").write_text(json.dumps({"run_id": meta["run_id"], "created_at": meta["created_at"]}))
    proc = evalhub(*args, cwd=tmp_path)
    one_line_error(proc, "another work format", str(work.path))
    assert not (tmp_path / "e.duckdb").exists()


def test_ctrl_c_during_generation_exits_fast_and_the_rerun_resumes(tmp_path, toy_world, toy_manifest, toy_adapter):
    # All 100 items: the toy writes about 100 answers a second, so 200 answers keep generation going for
    # seconds after the first two are checkpointed, long enough for the interrupt to land while generating.
    golden = tmp_path / "golden.jsonl"
    golden.write_text((toy_world / toy_manifest["golden"]).read_text())
    items = len(golden.read_text().splitlines())
    args = [sys.executable, "-m", "evalhub", "compare", str(toy_world / toy_manifest["base"]), str(toy_adapter),
            "--golden", str(golden), "--judge", "reference", "--backend", "hf", "--batch-size", "1",
            "--max-new-tokens", "48", "--db", str(tmp_path / "i.duckdb"), "--report-dir", str(tmp_path / "r")]
    # A shell without job control starts background commands with SIGINT ignored, and the child inherits that
    # (Python then installs no KeyboardInterrupt handler): give the child Ctrl+C as a terminal would.
    proc = subprocess.Popen(args, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / ".evalhub-work").glob("*/generations.partial.jsonl"))
        try:
            if found and found[0].read_text().count("\n") >= 2:
                partial = found[0]
                break
        except FileNotFoundError:
            pass  # generation finished between the glob and the read: the loop then sees the run end
        time.sleep(0.02)
    assert partial is not None, "no answer was checkpointed while generating"
    interrupted_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - interrupted_at < 15
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "--resume" in stderr, stderr[-3000:]
    kept = partial.read_text().count("\n")
    assert 2 <= kept < 2 * items and not (tmp_path / "i.duckdb").exists()

    rerun = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"({kept} kept from an earlier attempt)" in rerun.stderr or "kept from an earlier attempt" in rerun.stderr
    with duckdb.connect(str(tmp_path / "i.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 2 * items
