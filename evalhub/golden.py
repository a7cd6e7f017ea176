"""Load and validate a golden set: JSONL, one item a line, checked whole before anything is spent."""

from __future__ import annotations

from pathlib import Path

from evalhub.errors import UserError
from evalhub.jsonl import read_json_objects
from evalhub.records import GoldenItem

REQUIRED = ("id", "instruction", "output")
EXAMPLE = '{"id": "q1", "instruction": "...", "output": "the ideal answer"}'
KNOWN = {"id", "instruction", "input", "output", "tags", "messages", "cluster"}
ROLES = ("system", "user", "assistant")


def load_golden(path: Path | str) -> list[GoldenItem]:
    """Read a golden set, or raise UserError naming file:line and the fix.

    A UTF-8 BOM and CRLF line ends are accepted; bad JSON, missing or empty fields, unknown fields,
    duplicate ids and invalid UTF-8 are not.
    """
    items: list[GoldenItem] = []
    seen: dict[str, int] = {}
    for where, number, row in read_json_objects(path, "golden set file", EXAMPLE):
        messages = _messages(where, row) if "messages" in row else ()
        if messages:  # the conversation's last user turn stands for the instruction
            row = {**row, "instruction": messages[-1][1]}
        for key in REQUIRED:
            value = row.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise UserError(f"{where}: missing or empty field {key!r}; every item needs id, instruction (or "
                                "messages) and output")
            wanted = (str, int) if key == "id" else str
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise UserError(f"{where}: field {key!r} must be a string, not {type(value).__name__}; "
                                "write it as one JSON string")
        unknown = set(row) - KNOWN
        if unknown:
            raise UserError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(KNOWN)}")
        if "input" in row and not isinstance(row["input"], str):
            raise UserError(f"{where}: field 'input' must be a string")
        tags = row.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise UserError(f"{where}: field 'tags' must be a list of strings")
        cluster = row.get("cluster")
        if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
            raise UserError(f"{where}: field 'cluster' must be a non-empty string (items from one source share it)")
        item_id = str(row["id"])
        if item_id in seen:
            raise UserError(f"{where}: duplicate id {item_id!r} (first on line {seen[item_id]}); ids must be unique")
        seen[item_id] = number
        items.append(GoldenItem(id=item_id, instruction=row["instruction"], output=row["output"],
                                input=row.get("input", ""), tags=tuple(tags), messages=messages,
                                cluster=cluster))
    if not items:
        raise UserError(f"{path}: the golden set is empty; add one JSON object per line")
    return items


def _messages(where: str, row: dict) -> tuple[tuple[str, str], ...]:
    """A multi-turn item's conversation: an optional system turn, then user and assistant turns alternating,
    ending with the user's turn (the ideal next reply is `output`). Raises UserError naming file:line."""
    if "instruction" in row or "input" in row:
        raise UserError(f"{where}: an item has either 'messages' or 'instruction'/'input', not both; "
                        "put the last request as the conversation's final user turn")
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{where}: 'messages' must be a non-empty list of {{\"role\", \"content\"}} objects")
    turns: list[tuple[str, str]] = []
    for k, message in enumerate(messages):
        at = f"{where}: messages[{k}]"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise UserError(f"{at} must be an object with exactly 'role' and 'content'")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise UserError(f"{at}: unknown role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise UserError(f"{at}: 'content' must be a non-empty string")
        turns.append((role, content))
    roles = [role for role, _ in turns]
    start = 1 if roles[0] == "system" else 0
    if "system" in roles[start:]:
        raise UserError(f"{where}: messages[{roles.index('system', start)}]: a system turn may only come first")
    for k, role in enumerate(roles[start:], start=start):
        expected = "user" if (k - start) % 2 == 0 else "assistant"
        if role != expected:
            raise UserError(f"{where}: messages[{k}] is {role!r} where {expected!r} was expected; after an optional "
                            "system turn, user and assistant turns alternate, starting with the user")
    if roles[-1] != "user":
        raise UserError(f"{where}: the conversation ends with an {roles[-1]!r} turn; end it with the user's turn "
                        "(the ideal reply goes in 'output')")
    return tuple(turns)
