"""Opening the store: migrations on write, read-only for readers, a bounded wait when another process
holds a DuckDB file. The same migrations build a DuckDB file and a PostgreSQL database."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

from evalhub.errors import UserError
from evalhub.store._engine import Connection, connect, privilege_error
from evalhub.store._golden_sets import backfill as golden_sets_backfill
from evalhub.store._location import StoreArg, StoreLocation, location
from evalhub.store._schema import MIGRATIONS

LOCK_WAIT_SECONDS = 30.0


def default_db_path() -> StoreLocation:
    """`EVALHUB_DB` (a DuckDB file or a PostgreSQL URL), else ./evalhub.duckdb."""
    return location(None)


def store_exists(db: StoreArg = None) -> bool:
    """Whether there is a store to read: a file that exists, or a database holding evalhub's tables (an empty
    one is a store not yet written). A database that cannot be reached is a UserError saying why."""
    where = location(db)
    if not where.is_postgres:
        return where.path.exists()
    con = connect(where, read_only=True, wait=0)
    try:
        return {"schema_version", "runs"} <= con.tables()
    finally:
        con.rollback()
        con.close()


def check_reachable(db: StoreArg = None) -> None:
    """Connect once and close: a PostgreSQL URL that is malformed, a wrong password or a server that is down
    is a one-line UserError now rather than later. A DuckDB file needs no check."""
    where = location(db)
    if where.is_postgres:
        connect(where, read_only=True, wait=0).close()


def has_table(con: Connection, name: str) -> bool:
    return name in con.tables()


def _version(con: Connection) -> int:
    # fetchall, not fetchone: DuckDB 2 refuses further work on a connection with an unfinished result.
    return con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0


def _check_readable(con: Connection, db: StoreLocation) -> None:
    """A reader never migrates; it refuses a file that is not an evalhub store, or one a newer evalhub wrote."""
    tables = con.tables()
    if "schema_version" not in tables or "runs" not in tables:
        if db.is_postgres:
            raise UserError(f"the database {db} holds no evalhub store yet; write a run into it first "
                            "(`evalhub compare --db URL` or `evalhub import ... --db URL`)")
        raise UserError(f"{db} is not an evalhub store (no evalhub tables); point --db at the file "
                        "`evalhub compare` writes, or at a new path")
    version = _version(con)
    if version > len(MIGRATIONS):
        raise UserError(f"the store {db} was written by a newer evalhub (schema {version}, this one reads up to "
                        f"{len(MIGRATIONS)}); upgrade evalhub")


# Steps run in Python right after the migration that creates the named table, in its transaction: filling
# a new table from what older runs already hold.
BACKFILLS: dict[str, Callable[[Connection], None]] = {"run_golden_sets": golden_sets_backfill}


def _migrate(con: Connection) -> None:
    """Apply the missing migrations, one transaction each. On PostgreSQL an advisory lock makes concurrent
    first writers take turns, each re-reading the version under the lock."""
    while True:
        con.begin()
        try:
            con.lock_migrations()
            tables = con.tables()
            current = _version(con) if "schema_version" in tables else 0
            if current > len(MIGRATIONS):
                raise UserError(f"the store was written by a newer evalhub (schema {current}, this one knows up to "
                                f"{len(MIGRATIONS)}); upgrade evalhub")
            if current == 0 and tables:
                where = ("the database's schema holds tables that are not evalhub's; use a database of its own "
                         "(createdb evalhub)" if con.is_postgres else
                         "the file holds tables that are not evalhub's; point --db at an evalhub store or a new path")
                raise UserError(where)
            if current == len(MIGRATIONS):
                con.commit()
                return
            sql = MIGRATIONS[current]
            con.script(sql)
            for table, backfill in BACKFILLS.items():
                if f"CREATE TABLE {table} " in sql or f"CREATE TABLE {table}(" in sql:
                    backfill(con)
            con.execute("INSERT INTO schema_version (version) VALUES (?)", [current + 1])
            con.commit()
        except BaseException:
            con.rollback()
            raise


@contextlib.contextmanager
def write_connection(db: StoreArg = None, wait: float = LOCK_WAIT_SECONDS) -> Iterator[Connection]:
    """A migrated read-write connection inside one transaction: committed on success, rolled back on error
    (and by the server when the process dies), so a run is stored whole or not at all."""
    where = location(db)
    if where.path is not None:
        where.path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(where, read_only=False, wait=wait)
    try:
        _migrate(con)
        con.begin()
        try:
            yield con
        except BaseException:
            con.rollback()
            raise
        con.commit()
    except Exception as error:
        _raise_if_refused(where, error)
        raise
    finally:
        con.close()


@contextlib.contextmanager
def read_connection(db: StoreArg = None, wait: float = LOCK_WAIT_SECONDS) -> Iterator[Connection]:
    """A short-lived read-only connection; a missing store is a user error naming how to fill one."""
    where = location(db)
    if where.path is not None and not where.path.exists():  # (a database without evalhub's tables: below)
        raise UserError(f"no store at {where}; run `evalhub demo` or `evalhub compare` first, or point --db at one")
    con = connect(where, read_only=True, wait=wait)
    try:
        _check_readable(con, where)
        yield con
    except Exception as error:
        _raise_if_refused(where, error)
        raise
    finally:
        if where.is_postgres:
            con.rollback()
        con.close()


def _raise_if_refused(where, error: Exception) -> None:
    """A store that refused the user's privileges is said in one line (privilege_error); other errors pass."""
    refused = privilege_error(where, error)
    if refused is not None:
        raise refused from None


def read_rows_if_present(db: StoreArg, table: str, sql: str) -> list[tuple]:
    """The rows `sql` reads, or none when there is no store yet, or one older than `table`."""
    if not store_exists(db):
        return []
    with read_connection(db) as con:
        if not has_table(con, table):
            return []
        return con.execute(sql).fetchall()


def as_path(db: StoreArg) -> Path | None:
    """The file of a DuckDB store (None for a database)."""
    return location(db).path


def migrate(db: StoreArg = None) -> int:
    """Bring the store to this evalhub's schema (creating it when empty); the schema version it is at."""
    with write_connection(db) as con:
        return _version(con)
