"""Blind human votes (the app's Review page, `evalhub review import`): one row per run (or arena pair), golden
file, item and reviewer in `human_votes`. A new vote replaces the reviewer's old one; each vote (and each
import) is its own transaction, so two reviewers voting at once lose nothing."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Sequence

from evalhub.errors import UserError
from evalhub.store._connect import read_connection, store_exists, write_connection
from evalhub.store._location import StoreArg

VERDICTS = ("win", "loss", "tie")  # from the candidate's side; None: skipped
_COLUMNS = ("run_id", "pair", "golden_file", "item_id", "reviewer", "verdict", "shown_first", "note", "voted_at")


@dataclass(frozen=True)
class HumanVote:
    run_id: str
    golden_file: str
    item_id: str
    reviewer: str
    verdict: str | None          # 'win', 'loss', 'tie' from the candidate's side; None: skipped
    shown_first: str | None = None  # 'candidate' or 'baseline'
    note: str | None = None
    pair: str = ""               # '' for a compare run, 'a|b' for an arena pair
    voted_at: str | None = None  # set when stored


def _check(vote: HumanVote) -> None:
    if vote.verdict is not None and vote.verdict not in VERDICTS:
        raise UserError(f"verdict {vote.verdict!r} is not one of {', '.join(VERDICTS)} (or skip)")
    if not vote.reviewer.strip():
        raise UserError("a vote needs a reviewer name")
    if vote.shown_first not in (None, "candidate", "baseline"):
        raise UserError(f"shown_first {vote.shown_first!r} is not 'candidate' or 'baseline'")


def _row(vote: HumanVote, now: str) -> list:
    return [vote.run_id, vote.pair, vote.golden_file, vote.item_id, vote.reviewer.strip(), vote.verdict,
            vote.shown_first, vote.note or None, vote.voted_at or now]


def _upsert(con, rows: list[list]) -> None:
    names = ", ".join(_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in ("verdict", "shown_first", "note", "voted_at"))
    con.executemany(f"INSERT INTO human_votes ({names}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
                    f"ON CONFLICT (run_id, pair, golden_file, item_id, reviewer) DO UPDATE SET {updates}", rows)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def record_vote(vote: HumanVote, db: StoreArg = None) -> None:
    """Store one vote in its own transaction, replacing the reviewer's earlier vote on the item."""
    _check(vote)
    with write_connection(db) as con:
        _upsert(con, [_row(vote, _now())])


def record_votes(votes: Sequence[HumanVote], db: StoreArg = None) -> int:
    """Store many votes (an import) in one transaction: all or none. Returns how many were written."""
    for vote in votes:
        _check(vote)
    now = _now()
    with write_connection(db) as con:
        _upsert(con, [_row(v, now) for v in votes])
    return len(votes)


def votes_for_run(run_id: str, db: StoreArg = None, pair: str | None = None) -> list[HumanVote]:
    """Every vote on `run_id` (one pair's only, when `pair` is given), skips included, oldest first."""
    if not store_exists(db):
        return []
    with read_connection(db) as con:
        if "human_votes" not in con.tables():
            return []
        query = f"SELECT {', '.join(_COLUMNS)} FROM human_votes WHERE run_id = ?"
        params: list = [run_id]
        if pair is not None:
            query += " AND pair = ?"
            params.append(pair)
        rows = con.execute(query + " ORDER BY voted_at, reviewer, golden_file, item_id", params).fetchall()
    return [HumanVote(run_id=r[0], pair=r[1], golden_file=r[2], item_id=r[3], reviewer=r[4], verdict=r[5],
                      shown_first=r[6], note=r[7], voted_at=str(r[8])) for r in rows]


def run_items(run_id: str, db: StoreArg = None) -> list[tuple[str, str]]:
    """The (golden file, item) pairs a compare run answered with both models, in a stable order: what can be
    reviewed. Empty for an unknown run."""
    if not store_exists(db):
        return []
    with read_connection(db) as con:
        rows = con.execute(
            "SELECT golden_file, item_id FROM generations WHERE run_id = ? AND role IN ('base', 'tuned') "
            "GROUP BY golden_file, item_id HAVING count(DISTINCT role) = 2 ORDER BY golden_file, item_id",
            [run_id]).fetchall()
    return [(r[0], r[1]) for r in rows]


def judge_item_verdicts(run_id: str, db: StoreArg = None) -> dict[str, dict[tuple[str, str], tuple[str | None, str | None]]]:
    """Per judge of a compare run, (golden file, item) -> (verdict with the candidate shown first, with it shown
    second), from the tuned model's side (None: that order gave no verdict). A panel's judges each come from
    `panel_judgments`; a single judge from `judgments`. Canaries are left out."""
    found: dict[str, dict[tuple[str, str], list]] = {}
    if not store_exists(db):
        return {}
    with read_connection(db) as con:
        panel = con.execute(
            "SELECT judge, golden_file, item_id, tuned_position, verdict FROM panel_judgments "
            "WHERE run_id = ? AND NOT is_canary", [run_id]).fetchall() if "panel_judgments" in con.tables() else []
        rows = panel or con.execute(
            "SELECT judge, golden_file, item_id, tuned_position, verdict FROM judgments "
            "WHERE run_id = ? AND NOT is_canary", [run_id]).fetchall()
    for judge, golden_file, item_id, position, verdict in rows:
        orders = found.setdefault(judge, {}).setdefault((golden_file, item_id), [None, None])
        orders[0 if position == "A" else 1] = verdict
    return {judge: {key: (v[0], v[1]) for key, v in items.items()} for judge, items in found.items()}


def run_answers(run_id: str, db: StoreArg = None) -> dict[tuple[str, str], dict]:
    """(golden file, item) -> {"prompt", "candidate", "baseline", "ideal"} for a compare run's items both
    models answered: what a reviewer reads (the ideal answer None where the run did not record it)."""
    if not store_exists(db):
        return {}
    with read_connection(db) as con:
        rows = con.execute("SELECT golden_file, item_id, role, prompt, output FROM generations "
                           "WHERE run_id = ? AND role IN ('base', 'tuned')", [run_id]).fetchall()
        ideal = {(r[0], r[1]): r[2] for r in con.execute(
            "SELECT golden_file, item_id, output FROM golden_items WHERE run_id = ?", [run_id]).fetchall()} \
            if "golden_items" in con.tables() else {}
    found: dict[tuple[str, str], dict] = {}
    for golden_file, item_id, role, prompt, output in rows:
        entry = found.setdefault((golden_file, item_id), {"prompt": prompt, "ideal": ideal.get((golden_file, item_id))})
        entry["candidate" if role == "tuned" else "baseline"] = output
    return {key: entry for key, entry in sorted(found.items()) if "candidate" in entry and "baseline" in entry}


def compare_votes(db: StoreArg = None) -> list[tuple[str, str, str, str, str]]:
    """Every counted vote on compare runs (skips and arena pairs left out), as (run, golden file, item,
    reviewer, verdict): what the leaderboard's human column folds per run and golden set."""
    if not store_exists(db):
        return []
    with read_connection(db) as con:
        if "human_votes" not in con.tables():
            return []
        rows = con.execute("SELECT run_id, golden_file, item_id, reviewer, verdict FROM human_votes "
                           "WHERE pair = '' AND verdict IS NOT NULL").fetchall()
    return [tuple(r) for r in rows]


def pair_key(a: str, b: str) -> str:
    """The `pair` column of a vote on an arena pair: its two models by name, a first as arena_pairs stores it."""
    return f"{a}|{b}"


def arena_pair_answers(arena_id: str, a: str, b: str, db: StoreArg = None) -> dict[tuple[str, str], dict]:
    """(golden file, item) -> {"prompt", "candidate" (a's answer), "baseline" (b's), "ideal"} for the arena's
    golden items both models of the pair answered: run_answers' shape, with a in the candidate's place."""
    if not store_exists(db):
        return {}
    with read_connection(db) as con:
        rows = con.execute("SELECT golden_file, item_id, role, prompt, output FROM generations "
                           "WHERE run_id = ? AND role IN (?, ?)", [arena_id, a, b]).fetchall()
        ideal = {(r[0], r[1]): r[2] for r in con.execute(
            "SELECT golden_file, item_id, output FROM golden_items WHERE run_id = ?", [arena_id]).fetchall()} \
            if "golden_items" in con.tables() else {}
    found: dict[tuple[str, str], dict] = {}
    for golden_file, item_id, role, prompt, output in rows:
        entry = found.setdefault((golden_file, item_id), {"prompt": prompt, "ideal": ideal.get((golden_file, item_id))})
        entry["candidate" if role == a else "baseline"] = output
    return {key: entry for key, entry in sorted(found.items()) if "candidate" in entry and "baseline" in entry}


def arena_pair_verdicts(arena_id: str, a: str, b: str,
                        db: StoreArg = None) -> dict[str, dict[tuple[str, str], tuple[str | None, str | None]]]:
    """judge_item_verdicts for one arena pair: per judge, (golden file, item) -> (verdict with a shown first,
    with a shown second), from a's side, out of arena_judgments. Canaries are left out."""
    if not store_exists(db):
        return {}
    with read_connection(db) as con:
        if "arena_judgments" not in con.tables():
            return {}
        rows = con.execute("SELECT judge, golden_file, item_id, a_position, verdict FROM arena_judgments "
                           "WHERE run_id = ? AND a = ? AND b = ? AND NOT is_canary", [arena_id, a, b]).fetchall()
    found: dict[str, dict[tuple[str, str], list]] = {}
    for judge, golden_file, item_id, position, verdict in rows:
        orders = found.setdefault(judge, {}).setdefault((golden_file, item_id), [None, None])
        orders[0 if position == "A" else 1] = verdict
    return {judge: {key: (v[0], v[1]) for key, v in items.items()} for judge, items in found.items()}
