"""The judge reply cache: a SQLite store shared by processes, that a kill cannot tear, importing old JSONL once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evalhub.judge._cache import ReplyCache, cache_key, default_cache_path

REPO = Path(__file__).resolve().parents[1]

# A writer process using the real module: opens the cache, waits for "go" on stdin (so that all writers start
# together), then puts `count` replies under its own prefix (forever if negative), one committed put at a
# time, printing each index once its put has returned.
WRITER = """
import sys
from evalhub.judge._cache import ReplyCache
path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = ReplyCache(path)
print("open", flush=True)
sys.stdin.readline()
n = 0
while count < 0 or n < count:
    cache.put(f"{prefix}-{n}", f"{prefix} reply {n} " + "x" * (n % 300), n, 2 * n)
    print(n, flush=True)
    n += 1
cache.close()
"""


def _writer(path: Path, prefix: str, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), prefix, str(count)], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _start(procs: list[subprocess.Popen]) -> None:
    """Once every writer has opened the cache, let them all go at once."""
    for proc in procs:
        assert proc.stdout.readline().strip() == "open", proc.stderr.read()[-2000:]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


def _expected(prefix: str, n: int) -> dict:
    return {"reply": f"{prefix} reply {n} " + "x" * (n % 300), "prompt_tokens": n, "completion_tokens": 2 * n}


def _key(endpoint: str | None = "http://127.0.0.1:8000/v1", **change) -> str:
    args = dict(judge="openai:gpt-4.1", endpoint=endpoint, template_hash="t1", prompt="What is 2+2?",
                reference="4", answer_a="4", answer_b="five", sampling={"temperature": 0.0, "seed": 0},
                earlier_replies=[])
    args.update(change)
    return cache_key(**args)


def test_round_trip_and_reopen(tmp_path):
    path = tmp_path / "judge" / "replies.sqlite"
    cache = ReplyCache(path)
    assert len(cache) == 0 and cache.get("nope") is None
    cache.put("k1", "Verdict: A — ünïcode kept", 120, 7)
    cache.put("k2", "Verdict: B", 99, 3)
    assert cache.get("k1") == {"reply": "Verdict: A — ünïcode kept", "prompt_tokens": 120, "completion_tokens": 7}
    cache.put("k2", "Verdict: tie", 99, 4)  # a later reply for the same key replaces the earlier one
    assert len(cache) == 2
    cache.close()

    reopened = ReplyCache(path)
    assert len(reopened) == 2
    assert reopened.get("k2") == {"reply": "Verdict: tie", "prompt_tokens": 99, "completion_tokens": 4}
    assert reopened.get("k3") is None
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_usable_from_another_thread(tmp_path):
    """The judge may run its event loop in a worker thread (inside a notebook) on a cache opened outside it."""
    cache = ReplyCache(tmp_path / "replies.sqlite")
    cache.put("main", "from the main thread", 1, 1)
    seen = []

    def work():
        cache.put("worker", "from a worker thread", 2, 2)
        seen.append(cache.get("main"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [{"reply": "from the main thread", "prompt_tokens": 1, "completion_tokens": 1}]
    assert cache.get("worker")["reply"] == "from a worker thread"
    cache.close()


def test_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHUB_CACHE", str(tmp_path))
    assert default_cache_path() == tmp_path / "judge" / "replies.sqlite"
    monkeypatch.delenv("EVALHUB_CACHE")
    assert default_cache_path() == Path.home() / ".cache" / "evalhub" / "judge" / "replies.sqlite"


def test_concurrent_writers_lose_and_tear_nothing(tmp_path):
    path = tmp_path / "replies.sqlite"
    writers, per_writer = 3, 2000
    procs = {f"w{i}": _writer(path, f"w{i}", per_writer) for i in range(writers)}  # all open a fresh file at once
    _start(list(procs.values()))
    for prefix, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        assert out.split()[-1] == str(per_writer - 1)

    cache = ReplyCache(path)
    assert len(cache) == writers * per_writer
    for prefix in procs:
        for n in range(per_writer):
            assert cache.get(f"{prefix}-{n}") == _expected(prefix, n)
    cache.close()


def test_killed_writer_keeps_every_committed_reply(tmp_path):
    path = tmp_path / "replies.sqlite"
    proc = _writer(path, "k", -1)  # writes until killed
    _start([proc])
    committed = -1
    while committed < 400:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-2000:]
        committed = int(line)
    os.kill(proc.pid, signal.SIGKILL)  # mid-loop: the next put may be half written
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    cache = ReplyCache(path)
    assert len(cache) >= committed + 1  # perhaps one more: put returned but its index was not yet printed
    for n in range(committed + 1):
        assert cache.get(f"k-{n}") == _expected("k", n)
    cache.put("after", "the cache still takes writes", 1, 1)
    cache.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _old_jsonl(path: Path, keys: list[str]) -> None:
    lines = [json.dumps({"key": k, "reply": f"old {k}", "prompt_tokens": 10, "completion_tokens": 2}) for k in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + '{"key": "torn", "reply": "cut o', encoding="utf-8")


def test_old_jsonl_beside_the_default_is_imported_once(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHUB_CACHE", str(tmp_path))
    old = tmp_path / "judge" / "replies.jsonl"
    _old_jsonl(old, ["a", "b", "c"])

    cache = ReplyCache(default_cache_path())
    assert len(cache) == 3
    assert cache.get("b") == {"reply": "old b", "prompt_tokens": 10, "completion_tokens": 2}
    assert cache.get("torn") is None
    cache.put("new", "fresh", 1, 1)
    cache.close()

    # an old process appends to the JSONL afterwards: the second open neither re-imports nor duplicates
    with open(old, "a", encoding="utf-8") as handle:
        handle.write("\n" + json.dumps({"key": "late", "reply": "late", "prompt_tokens": 1, "completion_tokens": 1})
                     + "\n")
    again = ReplyCache(default_cache_path())
    assert len(again) == 4 and again.get("late") is None and again.get("new")["reply"] == "fresh"
    again.close()
    with sqlite3.connect(default_cache_path()) as db:
        marks = db.execute("SELECT value FROM meta WHERE name = 'jsonl_import'").fetchall()
    assert len(marks) == 1 and json.loads(marks[0][0])["records"] == 3


def test_old_cache_path_option_ending_in_jsonl(tmp_path):
    old = tmp_path / "mine.jsonl"
    _old_jsonl(old, ["x", "y"])
    cache = ReplyCache(old)
    assert cache.path == tmp_path / "mine.sqlite" and len(cache) == 2
    cache.put("z", "new", 1, 1)
    cache.close()
    assert old.read_text(encoding="utf-8").count("\n") == 2  # the old file is left as it was

    again = ReplyCache(old)
    assert len(again) == 3 and again.get("x")["reply"] == "old x"
    again.close()


def test_key_covers_the_endpoint_and_everything_asked():
    base = _key()
    assert base != _key(endpoint="http://10.0.0.2:8000/v1")
    assert base != _key(endpoint=None)
    assert base == _key()  # deterministic
    for change in [dict(judge="openai:gpt-4o"), dict(template_hash="t2"), dict(prompt="What is 3+3?"),
                   dict(reference=None), dict(answer_a="five", answer_b="4"), dict(sampling={"temperature": 0.7}),
                   dict(earlier_replies=["unreadable"])]:
        assert _key(**change) != base, change


@pytest.mark.parametrize("bad", ["not json at all", '["a list"]', '{"key": 5, "reply": "x"}',
                                 '{"key": "k", "reply": "x", "prompt_tokens": "many"}'])
def test_foreign_jsonl_lines_are_skipped(tmp_path, bad):
    old = tmp_path / "replies.jsonl"
    old.write_text(bad + "\n" + json.dumps({"key": "ok", "reply": "fine", "prompt_tokens": 3,
                                            "completion_tokens": 1}) + "\n", encoding="utf-8")
    cache = ReplyCache(tmp_path / "replies.sqlite")
    assert len(cache) == 1 and cache.get("ok")["reply"] == "fine"
    cache.close()
