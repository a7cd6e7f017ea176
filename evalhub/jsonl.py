"""Reading a JSONL file of objects with errors that name file:line, shared by golden sets and training data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def read_json_objects(path: Path | str, what: str, example: str) -> Iterator[tuple[str, int, dict]]:
    """Yield ("file:line", line number, object) for each non-blank line, or raise UserError naming the fix.

    `what` names the file in errors ("golden set", "training file"); `example` shows an expected object.
    A UTF-8 BOM and CRLF line ends are accepted.
    """
    from evalhub.errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; pass the {what} itself, a JSONL file with one object like {example} per line")
    if not path.is_file():
        raise UserError(f"{path}: no such {what}; pass a JSONL file with one object like {example} per line")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: invalid UTF-8; save the file as UTF-8") from None
    # Split on "\n" only: str.splitlines() would also split inside JSON strings at U+2028, U+0085 and the like,
    # which JSON allows unescaped. A CRLF line end leaves a "\r" that rstrip removes.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: bad JSON ({error.msg}); write one JSON object per line") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object like {example}")
        yield where, number, row
