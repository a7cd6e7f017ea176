"""Votes gathered outside the app (a spreadsheet, a Label Studio export): `evalhub review import` reads them
from JSONL, `evalhub review export --calibration` writes a run's voted pairs as a `judge calibrate` file."""

from __future__ import annotations

import json
from pathlib import Path

from evalhub.errors import UserError

EXAMPLE = '{"run_id": "...", "item_id": "q1", "reviewer": "ana", "verdict": "candidate"}'
# verdict in a votes file -> stored verdict (from the candidate's side)
FILE_VERDICTS = {"candidate": "win", "baseline": "loss", "tie": "tie"}
_FIELDS = {"run_id", "item_id", "reviewer", "verdict", "golden_file", "note"}


def read_votes(path: Path, db=None) -> list:
    """Every vote of `path`, checked against the store's runs and items; UserError naming file:line."""
    from evalhub.jsonl import read_json_objects
    from evalhub.store import HumanVote, run_exists, run_items

    items_of: dict[str, list[tuple[str, str]] | None] = {}
    votes, seen = [], {}
    for where, number, row in read_json_objects(path, "votes file", EXAMPLE):
        unknown = sorted(set(row) - _FIELDS)
        if unknown:
            raise UserError(f"{where}: unknown field {unknown[0]!r}; each line is {EXAMPLE} (optional golden_file, note)")
        for name in ("run_id", "item_id", "reviewer", "verdict"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise UserError(f"{where}: {name} is missing or not a text; each line is {EXAMPLE}")
        if row["verdict"] not in FILE_VERDICTS:
            raise UserError(f"{where}: verdict {row['verdict']!r} is not \"candidate\", \"baseline\" or \"tie\"")
        run_id = row["run_id"]
        if run_id not in items_of:
            items_of[run_id] = run_items(run_id, db) if run_exists(run_id, db) else None
        items = items_of[run_id]
        if items is None:
            raise UserError(f"{where}: no run {run_id!r} in the store; `evalhub runs` lists them")
        matches = [(g, i) for g, i in items if i == row["item_id"] and row.get("golden_file") in (None, g)]
        if not matches:
            raise UserError(f"{where}: run {run_id} has no item {row['item_id']!r}"
                            + (f" in {row['golden_file']}" if row.get("golden_file") else "")
                            + "; use the golden set's item ids")
        if len(matches) > 1:
            raise UserError(f"{where}: item {row['item_id']!r} is in several golden sets of run {run_id} "
                            f"({', '.join(g for g, _ in matches)}); add golden_file")
        golden_file, item_id = matches[0]
        key = (run_id, golden_file, item_id, row["reviewer"].strip())
        if key in seen:
            raise UserError(f"{where}: {row['reviewer']} already voted on {item_id} on line {seen[key]}; "
                            "keep one vote per reviewer and item")
        seen[key] = number
        votes.append(HumanVote(run_id=run_id, golden_file=golden_file, item_id=item_id, reviewer=row["reviewer"],
                               verdict=FILE_VERDICTS[row["verdict"]], note=row.get("note")))
    if not votes:
        raise UserError(f"{path}: the votes file is empty; add one JSON object like {EXAMPLE} per line")
    return votes


def import_votes(path: Path, db=None) -> int:
    """Check every vote of `path`, then store them all in one transaction (nothing on any error)."""
    from evalhub.store import record_votes

    return record_votes(read_votes(path, db), db)


def export_calibration(run_id: str, out: Path, db=None) -> int:
    """Write the run's voted items as a `judge calibrate` file (answer_a: the candidate; human: the reviewers'
    majority); returns how many pairs were written. Written whole or not at all."""
    from evalhub.stats.human import item_verdict
    from evalhub.store import run_answers, votes_for_run

    per_item: dict[tuple[str, str], list[str]] = {}
    for vote in votes_for_run(run_id, db, pair=""):
        if vote.verdict is not None:
            per_item.setdefault((vote.golden_file, vote.item_id), []).append(vote.verdict)
    if not per_item:
        raise UserError(f"run {run_id} has no human votes; vote on the app's Review page or "
                        "`evalhub review import VOTES.jsonl` first")
    answers = run_answers(run_id, db)
    several = len({g for g, _ in per_item}) > 1
    to_human = {"win": "A", "loss": "B", "tie": "tie"}
    lines = []
    for (golden_file, item_id), verdicts in sorted(per_item.items()):
        entry = answers[(golden_file, item_id)]
        lines.append(json.dumps({"id": f"{Path(golden_file).stem}/{item_id}" if several else item_id,
                                 "instruction": entry["prompt"], "answer_a": entry["candidate"],
                                 "answer_b": entry["baseline"], "human": to_human[item_verdict(verdicts)]}))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(out)
    return len(lines)
