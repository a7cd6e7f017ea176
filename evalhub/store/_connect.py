"""Opening the store: migrations on write, read-only for readers, a bounded wait when another process
holds the file."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from evalhub.errors import UserError
from evalhub.store._schema import MIGRATIONS

LOCK_WAIT_SECONDS = 30.0


def default_db_path() -> Path:
    """`EVALHUB_DB`, else ./evalhub.duckdb."""
    return Path(os.environ.get("EVALHUB_DB") or "evalhub.duckdb")


def _connect(db: Path, read_only: bool, wait: float):
    import duckdb

    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise UserError(f"cannot open the store {db}: {error}") from error
            if time.monotonic() >= deadline:
                # DuckDB's message names the process holding the lock (its PID).
                holder = str(error).split("Conflicting lock is held in", 1)[-1].strip().splitlines()[0]
                raise UserError(
                    f"the store {db} is locked by another process ({holder}); wait for it to finish or use --db"
                ) from error
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def has_table(con, name: str) -> bool:
    # fetchall, not fetchone: DuckDB 2 refuses further work on a connection with an unfinished result.
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0] > 0


def _has_foreign_tables(con) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables").fetchall()[0][0] > 0


def _check_readable(con, db: Path) -> None:
    """A reader never migrates; it refuses a file that is not an evalhub store, or one a newer evalhub wrote."""
    if not has_table(con, "schema_version") or not has_table(con, "runs"):
        raise UserError(f"{db} is not an evalhub store (no evalhub tables); point --db at the file "
                        "`evalhub compare` writes, or at a new path")
    version = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0
    if version > len(MIGRATIONS):
        raise UserError(f"the store {db} was written by a newer evalhub (schema {version}, this one reads up to "
                        f"{len(MIGRATIONS)}); upgrade evalhub")


def _migrate(con) -> None:
    current = 0
    if has_table(con, "schema_version"):
        current = con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
    if current > len(MIGRATIONS):
        raise UserError(f"the store was written by a newer evalhub (schema {current}, this one knows up to "
                        f"{len(MIGRATIONS)}); upgrade evalhub")
    if current == 0 and _has_foreign_tables(con):
        raise UserError("the file holds tables that are not evalhub's; point --db at an evalhub store or a new path")
    for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
        con.execute("BEGIN TRANSACTION")
        con.execute(sql)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [version])
        con.execute("COMMIT")


@contextlib.contextmanager
def write_connection(db: Path | None = None, wait: float = LOCK_WAIT_SECONDS) -> Iterator:
    """A migrated read-write connection inside one transaction: committed on success, rolled back on error."""
    db = Path(db) if db else default_db_path()
    if db.is_dir():
        raise UserError(f"--db {db}: is a folder; pass a store file such as {db / 'evalhub.duckdb'}")
    db.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(db, read_only=False, wait=wait)
    try:
        _migrate(con)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


@contextlib.contextmanager
def read_connection(db: Path | None = None, wait: float = LOCK_WAIT_SECONDS) -> Iterator:
    """A short-lived read-only connection; a missing store is a user error naming how to fill one."""
    db = Path(db) if db else default_db_path()
    if not db.exists():
        raise UserError(f"no store at {db}; run `evalhub demo` or `evalhub compare` first, or point --db at one")
    if db.is_dir():
        raise UserError(f"--db {db}: is a folder; pass a store file such as {db / 'evalhub.duckdb'}")
    con = _connect(db, read_only=True, wait=wait)
    try:
        _check_readable(con, db)
        yield con
    finally:
        con.close()
