"""`evalhub arena` end to end on the toy world: four adapters of the toy base trained to different strengths,
ranked from one vLLM engine in the order of their training; the store, the app page, --anchor, resume after
a kill, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ARENA_STEPS, REPO
from tests.fake_openai import FakeOpenAI, completion

SUMMARY_KEYS = {"run_id", "models", "ratings", "pairs", "judge_stats"}
RATING_KEYS = {"model", "rating", "ci", "rank", "comparisons"}
PAIR_KEYS = {"a", "b", "wins", "losses", "ties", "win_rate", "win_rate_ci", "p_value", "p_holm", "significant",
             "position_consistency", "inconsistent", "mde", "uninformative"}


def _evalhub(*args: str, cwd: Path, env: dict | None = None, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalhub", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture(scope="module")
def arena_run(tmp_path_factory, toy_world: Path, toy_manifest: dict, toy_adapters: dict) -> dict:
    """One real arena of the four toy adapters (given out of order) on the toy golden set, on vLLM."""
    root = tmp_path_factory.mktemp("arena")
    models = [str(toy_adapters[steps]) for steps in (ARENA_STEPS[2], ARENA_STEPS[0], ARENA_STEPS[3], ARENA_STEPS[1])]
    proc = _evalhub("arena", *models, "--golden", str(toy_world / toy_manifest["golden"]), "--judge", "reference",
                    "--backend", "vllm", "--db", str(root / "evalhub.duckdb"), "--json", str(root / "arena.json"),
                    "--report-dir", str(root / "reports"), cwd=root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"root": root, "db": root / "evalhub.duckdb", "summary": json.loads((root / "arena.json").read_text()),
            "models": models, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.mark.slow
def test_arena_ranks_the_toy_adapters_in_the_order_of_their_training(arena_run, toy_adapters):
    summary = arena_run["summary"]
    assert set(summary) == SUMMARY_KEYS and summary["models"] == arena_run["models"]
    ratings = summary["ratings"]
    assert all(set(r) == RATING_KEYS for r in ratings)
    strongest_first = [str(toy_adapters[steps]) for steps in reversed(ARENA_STEPS)]
    assert [r["model"] for r in ratings] == strongest_first
    for r in ratings:
        assert r["ci"][0] <= r["rating"] <= r["ci"][1] and r["comparisons"] == 3 * 100
    assert ratings[0]["rank"] == 1 and ratings[-1]["rank"] > 1
    # rank = 1 + the number of models whose interval lies wholly above
    for r in ratings:
        assert r["rank"] == 1 + sum(o["ci"][0] > r["ci"][1] for o in ratings)
    pairs = summary["pairs"]
    assert len(pairs) == 6 and all(set(p) == PAIR_KEYS for p in pairs)
    assert [(p["a"], p["b"]) for p in pairs][:3] == [(arena_run["models"][0], m) for m in arena_run["models"][1:]]
    strongest_vs_weakest = next(p for p in pairs if {p["a"], p["b"]} == {strongest_first[0], strongest_first[-1]})
    assert strongest_vs_weakest["significant"] and strongest_vs_weakest["p_holm"] >= strongest_vs_weakest["p_value"]
    for p in pairs:
        assert p["wins"] + p["losses"] + p["ties"] <= 100
        assert p["win_rate_ci"][0] <= p["win_rate"] <= p["win_rate_ci"][1]
    stats = summary["judge_stats"]
    assert stats["judge"] == "reference" and stats["parse_failures"] == 0 and stats["scored"] > 0
    assert "rating" in arena_run["stdout"]


@pytest.mark.slow
def test_arena_is_stored_whole_and_has_its_app_page(arena_run, monkeypatch):
    from streamlit.testing.v1 import AppTest

    run_id = arena_run["summary"]["run_id"]
    # The app first: a store holding arenas only opens on the arena page.
    monkeypatch.setenv("EVALHUB_DB", str(arena_run["db"]))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(run_id in h.value for h in at.header), [h.value for h in at.header]
    assert len(at.get("vega_lite_chart")) == 2  # ratings with CI bars, the win-rate heatmap
    shown = next(df.value for df in at.dataframe if "rank" in df.value.columns)
    assert list(shown["rank"]) == [r["rank"] for r in arena_run["summary"]["ratings"]]

    with duckdb.connect(str(arena_run["db"]), read_only=True) as con:
        def count(table: str) -> int:
            return con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]

        assert (count("arenas"), count("arena_models"), count("arena_pairs")) == (1, 4, 6)
        assert count("arena_judgments") == 6 * 100 * 2 and count("generations") == 4 * 100
        assert count("golden_items") == 100
        ranks = dict(con.execute("SELECT model, rank FROM arena_models WHERE run_id = ?", [run_id]).fetchall())
    assert ranks == {r["model"]: r["rank"] for r in arena_run["summary"]["ratings"]}
    assert (arena_run["root"] / "reports" / f"{run_id}.md").exists()


# ---------------------------------------------------------------- anchor, resume, bad input (hf, small)

def _small_golden(toy_world: Path, toy_manifest: dict, folder: Path, n: int) -> Path:
    lines = (toy_world / toy_manifest["golden"]).read_text().splitlines()[:n]
    path = folder / "small.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _verdict(body: dict) -> str:
    import hashlib
    import re

    prompt = re.sub(r"[0-9a-f]{16}", "MARKER", json.dumps(body["messages"], sort_keys=True))
    digest = hashlib.sha256(prompt.encode()).digest()[0]
    return json.dumps({"verdict": "AB"[digest % 2] if digest % 5 else "tie", "reason": "scripted"})


def _arena_with_fake_judge(models, golden: Path, root: Path, server, *extra: str, wait: bool = True):
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-secret", "EVALHUB_CACHE": str(root / "cache")}
    command = [sys.executable, "-m", "evalhub", "arena", *models, "--golden", str(golden), "--judge",
               "openai:fake-judge", "--judge-base-url", server.base_url, "--judge-concurrency", "2", "--backend",
               "hf", "--max-new-tokens", "16", "--db", str(root / "evalhub.duckdb"), "--report-dir",
               str(root / "reports"), "--json", str(root / "arena.json"), *extra]
    if wait:
        return subprocess.run(command, capture_output=True, text=True, cwd=root, env=env, timeout=900)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root, env=env)


@pytest.mark.slow
def test_a_killed_arena_resumes_without_repeating_a_judge_call(toy_world, toy_manifest, toy_adapters, tmp_path):
    golden = _small_golden(toy_world, toy_manifest, tmp_path, 20)
    models = [str(toy_adapters[steps]) for steps in ARENA_STEPS[1:]]
    # At most three pairs x 20 items x both orders (identical answers are settled without a judge call).

    def reply(body):
        return replace(completion(_verdict(body), body), delay=0.05)

    with FakeOpenAI(reply=reply) as server:
        once = _arena_with_fake_judge(models, golden, tmp_path / "once", server)
        assert once.returncode == 0, once.stderr[-3000:]
        total = len(server.chat_requests)
    assert 80 < total <= 3 * 20 * 2

    killed = tmp_path / "killed"
    with FakeOpenAI(reply=reply) as server:
        proc = _arena_with_fake_judge(models, golden, killed, server, wait=False)
        deadline = time.monotonic() + 600
        while len(server.chat_requests) < 50 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL, in the second pair (the first has at most 40 calls)
        proc.wait()
        before = len(server.chat_requests)
        assert 50 <= before < total
        resumed = _arena_with_fake_judge(models, golden, killed, server)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        after = len(server.chat_requests) - before
    assert "resuming run" in resumed.stderr and "judgments-pair1: done in an earlier attempt" in resumed.stderr
    assert after <= total - before + 2  # only the calls in flight at the kill (the concurrency) again
    first = json.loads((tmp_path / "once" / "arena.json").read_text())
    again = json.loads((killed / "arena.json").read_text())
    for summary in (first, again):
        summary.pop("run_id")
        summary["judge_stats"].pop("calls")
    assert again == first


@pytest.mark.slow
def test_an_anchored_arena_judges_each_model_against_the_anchor(toy_world, toy_manifest, toy_adapters, tmp_path):
    golden = _small_golden(toy_world, toy_manifest, tmp_path, 8)
    anchor = str(toy_adapters[ARENA_STEPS[0]])
    models = [str(toy_adapters[steps]) for steps in ARENA_STEPS]
    proc = _evalhub("arena", *models, "--anchor", anchor, "--golden", str(golden), "--judge", "reference",
                    "--backend", "hf", "--max-new-tokens", "16", "--db", str(tmp_path / "a.duckdb"),
                    "--json", str(tmp_path / "a.json"), "--report-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "a.json").read_text())
    assert [(p["a"], p["b"]) for p in summary["pairs"]] == [(m, anchor) for m in models[1:]]
    assert summary["judge_stats"]["scored"] + summary["judge_stats"]["unscored"] == 3 * 8
    assert {r["model"] for r in summary["ratings"]} == set(models)


BAD = [
    (["arena", "{a}", "--golden", "{golden}", "--judge", "reference"], ["at least two MODELs"]),
    (["arena", "{a}", "{a}", "--golden", "{golden}", "--judge", "reference"], ["given twice"]),
    (["arena", "{a}", "{b}", "--judge", "reference"], ["--golden"]),
    (["arena", "{a}", "{b}", "--golden", "{golden}", "--judge", "reference", "--anchor", "{root}"],
     ["--anchor", "not one of"]),
    (["arena", "{a}", "{b}", "--golden", "{golden}", "--judge", "reference", "--prior-sd", "-1"], ["--prior-sd"]),
    (["arena", "{a}", "{root}/missing", "--golden", "{golden}", "--judge", "reference"], ["missing", "model folder"]),
    (["arena", "{a}", "{b}", "--golden", "{golden}"], ["--judge reference"]),
]


@pytest.mark.parametrize("args,words", BAD, ids=[" ".join(a[3:5]) or "one" for a, _ in BAD])
def test_bad_arena_input_is_one_line_and_writes_nothing(args, words, toy_world, toy_manifest, toy_adapters,
                                                        tmp_path):
    filled = [a.format(a=toy_adapters[ARENA_STEPS[0]], b=toy_adapters[ARENA_STEPS[1]], root=tmp_path,
                       golden=toy_world / toy_manifest["golden"]) for a in args]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "evalhub", *filled, "--db", str(tmp_path / "s.duckdb"),
                           "--report-dir", str(tmp_path / "reports")], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert all(word in lines[0] for word in words), lines[0]
    assert not (tmp_path / "s.duckdb").exists() and not (tmp_path / ".evalhub-work").exists()
