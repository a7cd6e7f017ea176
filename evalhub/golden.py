"""Load and validate a golden set: JSONL, one item a line, checked whole before anything is spent."""

from __future__ import annotations

from pathlib import Path

from evalhub.errors import UserError
from evalhub.jsonl import read_json_objects
from evalhub.records import GoldenItem

REQUIRED = ("id", "instruction", "output")
EXAMPLE = '{"id": "q1", "instruction": "...", "output": "the ideal answer"}'
KNOWN = {"id", "instruction", "input", "output", "tags"}


def load_golden(path: Path | str) -> list[GoldenItem]:
    """Read a golden set, or raise UserError naming file:line and the fix.

    A UTF-8 BOM and CRLF line ends are accepted; bad JSON, missing or empty fields, unknown fields,
    duplicate ids and invalid UTF-8 are not.
    """
    items: list[GoldenItem] = []
    seen: dict[str, int] = {}
    for where, number, row in read_json_objects(path, "golden set file", EXAMPLE):
        for key in REQUIRED:
            value = row.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise UserError(f"{where}: missing or empty field {key!r}; every item needs id, instruction and output")
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
        item_id = str(row["id"])
        if item_id in seen:
            raise UserError(f"{where}: duplicate id {item_id!r} (first on line {seen[item_id]}); ids must be unique")
        seen[item_id] = number
        items.append(GoldenItem(id=item_id, instruction=row["instruction"], output=row["output"],
                                input=row.get("input", ""), tags=tuple(tags)))
    if not items:
        raise UserError(f"{path}: the golden set is empty; add one JSON object per line")
    return items
