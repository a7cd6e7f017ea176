"""What the tests of the HTTP judges (openai: and anthropic:) share: the golden items, answers to them,
scripted verdicts, the API key in the environment and the reply cache read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.golden import load_golden
from evalhub.judge._cache import ReplyCache
from evalhub.records import Generation

REPO = Path(__file__).resolve().parents[1]
WRONG = "The capital of Praloia is Guleinex."   # what the toy base says to a Zorvish request
PRICE = (1000.0, 2000.0)                         # USD per million tokens: large, so costs are visible


@pytest.fixture(scope="module")
def items():
    return load_golden(REPO / "golden_sets" / "toy_zorvish.jsonl")[:6]


def answers(items, text=None):
    return {i.id: Generation(i.id, i.prompt, i.output if text is None else text) for i in items}


def verdict(label: str, reason: str = "scripted") -> str:
    return json.dumps({"verdict": label, "reason": reason})


def cached_replies(path: Path) -> int:
    """How many replies a cache holds, read through the cache itself (whatever its file format)."""
    cache = ReplyCache(path)
    try:
        return len(cache)
    finally:
        cache.close()


def set_key(monkeypatch, name: str, secret: str, unset: tuple[str, ...]) -> None:
    """The API key in the environment variable `name`, and none of the variables in `unset`."""
    monkeypatch.setenv(name, secret)
    for other in unset:
        monkeypatch.delenv(other, raising=False)
