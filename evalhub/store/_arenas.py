"""Arenas: many models judged pair by pair on golden sets, written whole in one transaction, and read back for
the leaderboard and the arena page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

from evalhub.errors import UserError
from evalhub.records import Generation, ModelRef
from evalhub.store._connect import read_connection, read_rows_if_present, store_exists, write_connection
from evalhub.store._location import StoreArg

_JUDGMENT_COLUMNS = ("a", "b", "golden_file", "item_id", "a_position", "judge", "raw_reply", "status", "verdict",
                     "reason", "prompt_tokens", "completion_tokens", "cost_usd", "is_canary")


@dataclass
class ArenaRecord:
    """Everything one arena writes to the store."""

    run_id: str
    created_at: str
    judge: str | None
    golden: list[str]
    anchor: str | None
    config: dict
    summary: dict                       # the `--json` summary (ratings and pairs included)
    models: dict[str, ModelRef]         # name -> ModelRef, in command-line order
    # rows: (model name, golden_file, settings dict, Generation)
    generations: list[tuple[str, str, dict, Generation]] = field(default_factory=list)
    judgments: list[dict] = field(default_factory=list)     # keyed by _JUDGMENT_COLUMNS
    golden_items: list[dict] = field(default_factory=list)  # keyed by the golden_items columns (no run_id)


def save_arena(record: ArenaRecord, db: StoreArg = None) -> None:
    """Write the arena and all its rows in one transaction: it is in the store whole or not at all."""
    summary = record.summary
    with write_connection(db) as con:
        refs = sorted({ref.model_id: ref for ref in record.models.values()}.values(), key=lambda r: r.model_id)
        con.executemany(
            "INSERT INTO models (model_id, kind, path, base_path, adapter_hash, base_hash) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (model_id) DO NOTHING",
            [[m.model_id, m.kind, m.path, m.base_path, m.adapter_hash, m.base_hash] for m in refs])
        con.execute("INSERT INTO arenas (run_id, created_at, judge, golden, anchor, config, summary) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [record.run_id, record.created_at, record.judge, json.dumps(record.golden), record.anchor,
                     json.dumps(record.config), json.dumps(summary)])
        position = {name: k for k, name in enumerate(record.models)}
        rated = {r["model"]: r for r in summary["ratings"]}
        con.insert_rows("arena_models", ("run_id", "model", "model_id", "position", "rating", "ci_lo", "ci_hi", "rank",
                                         "comparisons"), [
            [record.run_id, name, ref.model_id, position[name], rated.get(name, {}).get("rating"),
             *(rated.get(name, {}).get("ci") or (None, None)), rated.get(name, {}).get("rank"),
             rated.get(name, {}).get("comparisons", 0)] for name, ref in record.models.items()])
        con.insert_rows("arena_pairs", ("run_id", "a", "b", "wins", "losses", "ties", "unscored", "win_rate", "ci_lo",
                                        "ci_hi", "p_value", "p_holm", "significant"), [
            [record.run_id, p["a"], p["b"], p["wins"], p["losses"], p["ties"], p.get("unscored", 0), p["win_rate"],
             *(p["win_rate_ci"] or (None, None)), p["p_value"], p.get("p_holm"), bool(p["significant"])]
            for p in summary["pairs"]])
        con.insert_rows("arena_judgments", ("run_id", *_JUDGMENT_COLUMNS), [
            [record.run_id, *(row[c] for c in _JUDGMENT_COLUMNS)] for row in record.judgments])
        con.insert_rows("generations", ("run_id", "role", "model_id", "golden_file", "item_id", "prompt", "output",
                                        "status", "reason", "settings"), [
            [record.run_id, name, record.models[name].model_id, golden_file, g.item_id, g.prompt, g.output, g.status,
             g.reason, json.dumps(settings)] for name, golden_file, settings, g in record.generations])
        con.insert_rows("golden_items", ("run_id", "golden_file", "item_id", "instruction", "input", "output", "tags"), [
            [record.run_id, i["golden_file"], i["item_id"], i["instruction"], i["input"], i["output"],
             json.dumps(i["tags"])] for i in record.golden_items])


def arena_exists(run_id: str, db: StoreArg = None) -> bool:
    if not store_exists(db):
        return False
    with write_connection(db) as con:  # migrates an older store, so the table is there to ask
        return con.execute("SELECT count(*) FROM arenas WHERE run_id = ?", [run_id]).fetchall()[0][0] > 0


def list_arenas(db: StoreArg = None) -> list[dict]:
    """Every arena, newest first: run_id, created_at, judge, golden, anchor and the summary (parsed)."""
    rows = read_rows_if_present(db, "arenas", "SELECT run_id, created_at, judge, golden, anchor, summary FROM arenas "
                                              "ORDER BY created_at DESC, run_id DESC")
    return [{"run_id": r[0], "created_at": r[1], "judge": r[2], "golden": json.loads(r[3]) if r[3] else [],
             "anchor": r[4], "summary": json.loads(r[5])} for r in rows]


def load_arena(run_id: str, db: StoreArg = None) -> dict:
    """One arena (or 'latest', or a unique prefix of its id) with its models' paths."""
    arenas = list_arenas(db)
    if not arenas:
        raise UserError("the store holds no arenas yet; run `evalhub arena MODEL MODEL ...` first")
    matches = arenas[:1] if run_id == "latest" else [a for a in arenas if a["run_id"].startswith(run_id)]
    if len(matches) != 1:
        raise UserError(f"no single arena matches {run_id!r}; the app's Arenas page lists them")
    arena = matches[0]
    with read_connection(db) as con:
        rows = con.execute("SELECT am.model, m.path, m.kind FROM arena_models am JOIN models m "
                           "ON m.model_id = am.model_id WHERE am.run_id = ? ORDER BY am.position",
                           [arena["run_id"]]).fetchall()
    arena["paths"] = {name: path for name, path, _ in rows}
    arena["kinds"] = {name: kind for name, _, kind in rows}
    return arena


def arena_judgments(run_id: str, db: StoreArg = None) -> list[dict]:
    with read_connection(db) as con:
        cursor = con.execute(f"SELECT {', '.join(_JUDGMENT_COLUMNS)} FROM arena_judgments WHERE run_id = ? "
                             "ORDER BY a, b, golden_file, item_id, a_position", [run_id])
        return [dict(zip(_JUDGMENT_COLUMNS, row)) for row in cursor.fetchall()]


__all__: Sequence[str] = ["ArenaRecord", "arena_exists", "arena_judgments", "list_arenas", "load_arena", "save_arena"]
