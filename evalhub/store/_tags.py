"""Tags: names for deployed models (`production`, `staging`), each a model's path and its weights' hash."""

from __future__ import annotations

from evalhub.records import ModelRef
from evalhub.store._connect import read_rows_if_present, write_connection
from evalhub.store._location import StoreArg

_COLUMNS = ("name", "model_id", "kind", "path", "base_path", "weights_hash", "created_at")


def save_tag(name: str, ref: ModelRef, weights_hash: str, db: StoreArg = None) -> None:
    """Point `name` at the model `ref` (replacing what it named before), in one transaction."""
    with write_connection(db) as con:
        con.execute("DELETE FROM tags WHERE name = ?", [name])
        con.execute("INSERT INTO tags (name, model_id, kind, path, base_path, weights_hash) VALUES (?, ?, ?, ?, ?, ?)",
                    [name, ref.model_id, ref.kind, ref.path, ref.base_path, weights_hash])


def delete_tag(name: str, db: StoreArg = None) -> bool:
    """Remove `name`; False when there was no such tag."""
    if read_tag(name, db) is None:
        return False
    with write_connection(db) as con:
        con.execute("DELETE FROM tags WHERE name = ?", [name])
    return True


def list_tags(db: StoreArg = None) -> list[dict]:
    """Every tag, by name (none when there is no store yet, or one older than tags)."""
    rows = read_rows_if_present(db, "tags", f"SELECT {', '.join(_COLUMNS)} FROM tags ORDER BY name")
    return [dict(zip(_COLUMNS, row)) for row in rows]


def read_tag(name: str, db: StoreArg = None) -> dict | None:
    """The tag `name`, or None."""
    return next((tag for tag in list_tags(db) if tag["name"] == name), None)
