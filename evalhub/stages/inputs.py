"""A comparison's inputs, checked before any stage runs: golden items across sets, and their overlap with
the candidate's training data."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from evalhub.contracts import CompareRequest
from evalhub.errors import UserError
from evalhub.records import GoldenItem

Say = Callable[[str], None]


def namespaced_items(golden: dict[str, list[GoldenItem]]) -> list[GoldenItem]:
    """Every golden item, its id prefixed by its set's index ("0:item-7"), so the run's records know which
    set an item came from. An id in two sets is refused: both would be judged, and one prompt counted twice."""
    first_seen: dict[str, str] = {}
    for path, items in golden.items():
        for item in items:
            if item.id in first_seen:
                raise UserError(f"item id {item.id!r} is in both {first_seen[item.id]} and {path}; give the items "
                                "distinct ids (or drop one of the sets) so no item is judged twice")
            first_seen[item.id] = path
    return [replace(item, id=f"{index}:{item.id}") for index, items in enumerate(golden.values()) for item in items]


def split_key(key: str, golden_files: tuple[str, ...]) -> tuple[str, str]:
    """The golden file and the item's own id of a namespaced id; a canary's id is not namespaced."""
    index, _, item_id = key.partition(":")
    if index.isdigit() and item_id:
        return golden_files[int(index)], item_id
    return "canaries", key


def contamination(request: CompareRequest, golden: dict[str, list[GoldenItem]], say: Say) -> list[dict]:
    """Golden items that overlap the training data (when it is known) make the win rate meaningless."""
    if not request.training_data or not golden:
        return []
    from trainers.contamination import contamination_report

    findings = []
    for path, items in golden.items():
        for finding in contamination_report(items, Path(request.training_data)):
            findings.append({"golden_file": path, **(asdict(finding) if hasattr(finding, "__dataclass_fields__") else dict(finding))})
    if findings and request.strict_contamination:
        raise UserError(f"{len(findings)} golden item(s) overlap the training data {request.training_data}; "
                        "remove them from the golden set (or drop --strict)")
    if findings:
        say(f"warning: {len(findings)} golden item(s) overlap the training data; see the report's config")
    return findings
