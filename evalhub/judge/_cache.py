"""The judge's reply cache: an append-only JSONL file, one line per successful API call, flushed as it arrives.

A re-run, or a run resumed after a kill, finds every reply already paid for and asks the judge only for the
rest. Appending and flushing one line per reply means a kill loses at most the line being written; a torn
last line is skipped on reading. The cache holds replies and token counts, never credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def default_cache_path() -> Path:
    """`$EVALHUB_CACHE/judge/replies.jsonl`, else ~/.cache/evalhub/judge/replies.jsonl."""
    root = Path(os.environ.get("EVALHUB_CACHE") or Path.home() / ".cache" / "evalhub")
    return root / "judge" / "replies.jsonl"


def cache_key(model: str, template_hash: str, prompt: str, reference: str | None, answer_a: str, answer_b: str,
              sampling: dict, earlier_replies: list[str]) -> str:
    """What makes a reply reusable: judge model, template, the texts in their order, sampling settings, and
    the judge's earlier replies in this conversation (empty for the first ask, the unreadable reply for a
    re-ask). The random fence marker is left out on purpose: it changes every call, not what is asked."""
    material = json.dumps([model, template_hash, prompt, reference, answer_a, answer_b, sampling, earlier_replies],
                          ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ReplyCache:
    """Replies by key, loaded once, appended to as calls succeed."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._replies: dict[str, dict] = {}
        if self.path.exists():
            self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        if self.path.stat().st_size and not self._ends_with_newline():
            self._file.write("\n")  # seal a torn last line so the next record starts on a line of its own
            self._file.flush()

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _load(self) -> None:
        with open(self.path, "r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill mid-write
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    self._replies[record["key"]] = record

    def get(self, key: str) -> dict | None:
        return self._replies.get(key)

    def put(self, key: str, reply: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Persist one successful reply now, before it is parsed."""
        record = {"key": key, "reply": reply, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self._replies[key] = record

    def __len__(self) -> int:
        return len(self._replies)

    def close(self) -> None:
        self._file.close()
