"""The judge's reply cache: one SQLite table of replies by key, in WAL mode, committed one reply at a time.

A re-run, or a run resumed after a kill, finds every reply already paid for and asks the judge only for the
rest. The cache holds replies and token counts, never credentials.

Why SQLite in WAL mode rather than the JSONL file it replaces:

- **Many processes share one cache** (parallel compares, an arena beside a compare). The JSONL file was
  appended to by all of them without a lock, so two replies could interleave into one torn line. SQLite
  serialises writers with its own file locks; `busy_timeout` makes a writer wait its turn instead of failing,
  and WAL lets readers go on while one writer commits.
- **Indexed, not read whole.** The JSONL file was parsed into a dict at every run, so opening a cache of a
  million replies cost seconds and hundreds of MB before the first call. Here the key is the table's
  PRIMARY KEY: a look-up reads a few B-tree pages, and opening costs the same at any size
  (bench/bench_judge_cache.py measures both).
- **Each put is its own committed transaction**, written before the reply is parsed, so a kill loses nothing
  already put. `synchronous=NORMAL` (the WAL default that skips an fsync per commit) keeps that promise for a
  killed process; only a power cut can lose the last few commits, which costs re-asking them, never a torn
  record.

WAL's shared memory needs the file on a local disk: on a network file system (NFS) point `$EVALHUB_CACHE`
(or the judge's `cache_path`) at a local directory.

Old JSONL caches are imported once: when the store opens and a JSONL file of the same name sits beside it
(the old default `$EVALHUB_CACHE/judge/replies.jsonl` beside the new `replies.sqlite`), or when `ReplyCache`
is given a `.jsonl` path (an old `cache_path` option; the store is then the `.sqlite` file next to it), its
records are copied in, torn lines skipped, and the `meta` table records the import so it is never repeated.
Old keys were computed without the judge's endpoint, so imported replies keep their old keys: they match a new
key only by coincidence, and a re-run against them asks the judge again. That is accepted: the old file held
no endpoint to recover, and guessing one could serve a reply from the wrong server.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's commit before giving up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key               TEXT PRIMARY KEY,
    reply             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_IMPORT_MARK = "jsonl_import"


def default_cache_path() -> Path:
    """`$EVALHUB_CACHE/judge/replies.sqlite`, else ~/.cache/evalhub/judge/replies.sqlite."""
    root = Path(os.environ.get("EVALHUB_CACHE") or Path.home() / ".cache" / "evalhub")
    return root / "judge" / "replies.sqlite"


def cache_key(judge: str, endpoint: str | None, template_hash: str, prompt: str, reference: str | None,
              answer_a: str, answer_b: str, sampling: dict, earlier_replies: list[str]) -> str:
    """What makes a reply reusable: the judge, the endpoint that served it (one model name can be two models
    on two servers; None for the provider's default), the template, the texts in their order, the sampling
    settings, and the judge's earlier replies in this conversation (empty for the first ask, the unreadable
    reply for a re-ask). The random fence marker is left out on purpose: it changes every call, not what is
    asked."""
    material = json.dumps([judge, endpoint, template_hash, prompt, reference, answer_a, answer_b, sampling,
                           earlier_replies], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ReplyCache:
    """Replies by key in a SQLite file; each `put` is committed before it returns.

    One connection per cache object, usable from any one thread at a time (an asyncio loop, or the worker
    thread that runs it inside a notebook); a lock serialises its use, so it is safe to share across threads.
    Separate processes open their own `ReplyCache` on the same path.
    """

    def __init__(self, path: Path | str):
        given = Path(path)
        legacy: Path | None
        if given.suffix == ".jsonl":  # an old cache_path: the store goes next to it
            self.path, legacy = given.with_suffix(".sqlite"), given
        else:
            self.path, legacy = given, given.with_suffix(".jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, so each put is its own transaction, committed when execute returns.
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            if legacy.is_file() and not self._imported():
                self._import_jsonl(legacy)
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------ the old JSONL cache

    def _imported(self) -> bool:
        return self._db.execute("SELECT 1 FROM meta WHERE name = ?", (_IMPORT_MARK,)).fetchone() is not None

    def _import_jsonl(self, legacy: Path) -> None:
        """Copy an old JSONL cache in, once: BEGIN IMMEDIATE takes the write lock first, so of two processes
        opening at once one imports and the other, on getting the lock, finds the mark and does nothing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._imported():
                self._db.execute("COMMIT")
                return
            before = self._count()
            self._db.executemany("INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?)", _jsonl_records(legacy))
            mark = {"from": str(legacy), "records": self._count() - before}
            self._db.execute("INSERT INTO meta VALUES (?, ?)", (_IMPORT_MARK, json.dumps(mark)))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ the API

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT reply, prompt_tokens, completion_tokens FROM replies WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        return {"reply": row[0], "prompt_tokens": row[1], "completion_tokens": row[2]}

    def put(self, key: str, reply: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Persist one successful reply now, before it is parsed (a later reply for the same key replaces it)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
                             (key, reply, int(prompt_tokens), int(completion_tokens)))

    def put_many(self, records: Iterable[tuple[str, str, int, int]]) -> None:
        """Many (key, reply, prompt_tokens, completion_tokens) in one transaction: all of them or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", records)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _count(self) -> int:
        return self._db.execute("SELECT count(*) FROM replies").fetchone()[0]

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _jsonl_records(path: Path):
    """The old file's records as rows, one line at a time; torn or foreign lines are skipped."""
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write, or two writers' lines interleaved
            if not isinstance(record, dict) or not isinstance(record.get("key"), str) \
                    or not isinstance(record.get("reply"), str):
                continue
            try:
                tokens = int(record.get("prompt_tokens") or 0), int(record.get("completion_tokens") or 0)
            except (TypeError, ValueError):
                continue
            yield record["key"], record["reply"], *tokens
