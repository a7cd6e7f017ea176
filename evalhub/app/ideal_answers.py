"""The golden set's ideal answers for the item browser. Runs keep their golden items in the store; runs
stored before that (schema 1) have only the golden file's path, so their ideal answers are read back from the
file, and only trusted when it is still the one the run read (same sha256)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.golden import load_golden


@dataclass(frozen=True)
class IdealAnswers:
    answers: dict[str, str]       # item id -> ideal answer; empty when there is none to trust
    note: str | None              # why the ideal answers are missing, for the page to say


def ideal_answers(path: str, stored: dict[tuple[str, str], str], recorded_sha256: str | None) -> IdealAnswers:
    """The ideal answers of golden file `path` in a run: from the store's rows (`stored`), else from the file
    if it is still there and unchanged since the run."""
    from_store = {item_id: answer for (golden_file, item_id), answer in stored.items() if golden_file == path}
    if from_store:
        return IdealAnswers(from_store, None)
    file = Path(path)
    if not file.is_file():
        return IdealAnswers({}, f"the golden file {path} is not on this machine, so its ideal answers are not shown")
    if recorded_sha256 and hashlib.sha256(file.read_bytes()).hexdigest() != recorded_sha256:
        return IdealAnswers({}, f"the golden file {path} changed since this run, so its ideal answers are not shown")
    try:
        return IdealAnswers({item.id: item.output for item in load_golden(file)}, None)
    except UserError as error:
        return IdealAnswers({}, f"the golden file cannot be read: {error}")
