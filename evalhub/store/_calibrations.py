"""Judge calibrations: how well a judge agreed with human labels (`evalhub judge calibrate`), one row per
calibration, so `compare`, the gate and the leaderboard can show a judge's latest."""

from __future__ import annotations

import json
from typing import Sequence

from evalhub.store._connect import read_connection, store_exists, write_connection
from evalhub.store._location import StoreArg

_COLUMNS = ("calibration_id", "created_at", "judge", "endpoint", "protocol", "protocol_hash", "calibration_file",
            "file_hash", "n", "accuracy", "kappa", "position_consistency", "summary")


def save_calibration(row: dict, db: StoreArg = None) -> None:
    """Write one calibration (a dict keyed by the table's columns; `summary` a dict)."""
    with write_connection(db) as con:
        con.insert_rows("judge_calibrations", _COLUMNS,
                        [[json.dumps(row[c]) if c == "summary" else row[c] for c in _COLUMNS]])


def latest_calibrations(judges: Sequence[tuple[str, str | None, str]], db: StoreArg = None) -> dict[str, dict]:
    """For each (judge, endpoint, protocol hash): the summary of its latest calibration, with its id and date;
    judges never calibrated this way are left out. A store without the table (or none at all) has none."""
    if not judges or not store_exists(db):
        return {}
    found: dict[str, dict] = {}
    with read_connection(db) as con:
        if "judge_calibrations" not in con.tables():
            return {}
        for judge, endpoint, protocol_hash in judges:
            rows = con.execute(
                "SELECT calibration_id, created_at, endpoint, summary FROM judge_calibrations "
                "WHERE judge = ? AND protocol_hash = ? ORDER BY created_at DESC, calibration_id DESC",
                [judge, protocol_hash]).fetchall()
            for calibration_id, created_at, stored_endpoint, summary in rows:
                if (stored_endpoint or None) != (endpoint or None):
                    continue  # the same name on another server may be another model
                data = summary if isinstance(summary, dict) else json.loads(summary)
                found[judge] = {**data, "calibration_id": calibration_id, "created_at": str(created_at)}
                break
    return found
