"""The golden set's ideal answers for the item browser. The store keeps the prompts and both answers but
not the ideal ones, so they are read back from the golden file, and only trusted when the file is still
the one the run read (same sha256)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.golden import load_golden


@dataclass(frozen=True)
class IdealAnswers:
    answers: dict[str, str]       # item id -> ideal answer; empty when the file cannot be trusted
    note: str | None              # why the ideal answers are missing, for the page to say


def ideal_answers(path: str, recorded_sha256: str | None) -> IdealAnswers:
    """The ideal answers of the golden file at `path`, if it is still there and unchanged since the run."""
    file = Path(path)
    if not file.is_file():
        return IdealAnswers({}, f"the golden file {path} is not on this machine, so its ideal answers are not shown")
    if recorded_sha256 and hashlib.sha256(file.read_bytes()).hexdigest() != recorded_sha256:
        return IdealAnswers({}, f"the golden file {path} changed since this run, so its ideal answers are not shown")
    try:
        return IdealAnswers({item.id: item.output for item in load_golden(file)}, None)
    except UserError as error:
        return IdealAnswers({}, f"the golden file cannot be read: {error}")
