"""One connection interface over DuckDB and PostgreSQL, and the only place that knows how they differ.

Store code writes one SQL dialect: `?` placeholders, standard types, `ON CONFLICT ... DO NOTHING`, `->` and
`->>` on JSON with plain keys. `Connection.execute` hands it to DuckDB as is and rewrites it for psycopg
(`%s` placeholders); migrations get DuckDB's `DOUBLE` spelled `DOUBLE PRECISION` for PostgreSQL. JSON
columns read back as text on both engines. Anything not wrapped here (e.g. DuckDB's `sql`) falls through
to the underlying connection.
"""

from __future__ import annotations

import random
import re
import time
from typing import Iterable, Sequence

from evalhub.errors import UserError
from evalhub.store._location import StoreLocation, redact

CONNECT_TIMEOUT_S = 10
# Serialises migrations between processes writing one PostgreSQL store for the first time.
_MIGRATION_LOCK = 7_310_215
_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)", re.IGNORECASE)


def postgres_ddl(sql: str) -> str:
    """A migration as PostgreSQL reads it."""
    return _DOUBLE.sub("DOUBLE PRECISION", sql)


class Connection:
    """A connection to either engine. `execute` returns a cursor with fetchone/fetchall/description."""

    def __init__(self, raw, engine: str, where: StoreLocation):
        self.raw, self.engine, self.where = raw, engine, where

    @property
    def is_postgres(self) -> bool:
        return self.engine == "postgres"

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if self.is_postgres else sql

    def execute(self, sql: str, params: Sequence | None = None):
        if params is None:
            return self.raw.execute(sql)
        return self.raw.execute(self._sql(sql), list(params))

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        rows = [list(row) for row in rows]
        if not rows:
            return
        if self.is_postgres:
            with self.raw.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        else:
            self.raw.executemany(sql, rows)

    def script(self, sql: str) -> None:
        """Several statements without parameters (a migration)."""
        self.raw.execute(postgres_ddl(sql) if self.is_postgres else sql)

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[Sequence]) -> None:
        """Many rows into `table` fast: COPY on PostgreSQL, an Arrow scan on DuckDB."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.is_postgres:
            with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif len(rows) < 32:
            self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})",
                                 [list(r) for r in rows])
        else:
            import pyarrow as pa

            try:
                batch = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column of mixed Python types: let DuckDB cast each
                self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})",
                                     [list(r) for r in rows])
                return
            self.raw.register("_evalhub_rows", batch)
            try:
                self.raw.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _evalhub_rows")
            finally:
                self.raw.unregister("_evalhub_rows")

    def begin(self) -> None:
        if not self.is_postgres:
            self.raw.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self.raw.commit() if self.is_postgres else self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.rollback() if self.is_postgres else self.raw.execute("ROLLBACK")

    def lock_migrations(self) -> None:
        """Inside a transaction: one migrating process at a time (DuckDB's file lock already ensures it)."""
        if self.is_postgres:
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])

    def lock(self, key: str) -> None:
        """Inside a transaction: writers of the same `key` take turns until commit (DuckDB has one writer)."""
        if self.is_postgres:
            self.raw.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])

    def tables(self) -> set[str]:
        """The store's tables (in the connection's current schema)."""
        return {row[0] for row in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}

    def columns(self, table: str) -> list[str]:
        return [row[0] for row in self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]

    def close(self) -> None:
        self.raw.close()


def _duckdb(where: StoreLocation, read_only: bool, wait: float) -> Connection:
    import duckdb

    db = where.path
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            return Connection(duckdb.connect(str(db), read_only=read_only), "duckdb", where)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise UserError(f"cannot open the store {db}: {error}") from error
            if time.monotonic() >= deadline:
                # DuckDB's message names the process holding the lock (its PID).
                holder = str(error).split("Conflicting lock is held in", 1)[-1].strip().splitlines()[0]
                raise UserError(
                    f"the store {db} is locked by another process ({holder}); wait for it to finish or use --db"
                ) from error
            # Short, jittered retries: readers hold the file for tens of milliseconds, so a writer polling
            # every second could lose the race to an app reloading in a loop for a long time.
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.1)


def _postgres_error(where: StoreLocation, error: Exception) -> UserError:
    """One line, no password: what failed and what to check."""
    text = " ".join(str(error).split())
    password = None
    try:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(where.url).password
        password = unquote(password) if password else None
    except ValueError:
        pass
    if password:
        text = text.replace(password, "***")
    text = text.removeprefix("connection failed: ").removeprefix("connection is bad: ")
    if "password authentication failed" in text or "no password supplied" in text:
        fix = "check the user's password (in the URL, PGPASSWORD or ~/.pgpass)"
    elif "does not exist" in text:
        fix = "create the database (createdb) or fix the URL's database name"
    elif "refused" in text or "timeout" in text.lower() or "could not translate host" in text:
        fix = "check that the server is running and the URL's host and port"
    else:
        fix = "check the URL: postgresql://user@host:port/dbname"
    return UserError(f"cannot connect to the store {redact(where.url or '')}: {text}; {fix}")


def _postgres(where: StoreLocation, read_only: bool) -> Connection:
    import psycopg
    from psycopg.types.string import TextLoader

    try:
        raw = psycopg.connect(where.url, connect_timeout=CONNECT_TIMEOUT_S, application_name="evalhub")
    except (psycopg.Error, ValueError) as error:
        raise _postgres_error(where, error) from None
    # JSON columns read back as text, as DuckDB returns them: the store parses them where it needs to.
    raw.adapters.register_loader("json", TextLoader)
    raw.adapters.register_loader("jsonb", TextLoader)
    if read_only:
        # One snapshot for all of a page's queries; MVCC: a reader never blocks a writer, nor waits for one.
        raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        raw.read_only = True
    return Connection(raw, "postgres", where)


def connect(where: StoreLocation, read_only: bool, wait: float) -> Connection:
    """Open the store: DuckDB waits up to `wait` seconds for another process's lock; PostgreSQL needs none."""
    return _postgres(where, read_only) if where.is_postgres else _duckdb(where, read_only, wait)


def database_errors() -> tuple[type[BaseException], ...]:
    """The engines' errors for a query the store cannot answer (a table missing, a wrong type)."""
    import duckdb

    errors: list[type[BaseException]] = [duckdb.CatalogException]
    try:
        import psycopg

        errors.append(psycopg.errors.UndefinedTable)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(errors)


def privilege_error(where: StoreLocation, error: BaseException) -> UserError | None:
    """A PostgreSQL role without the rights an operation needs, as a UserError naming the fix; else None."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(error, psycopg.errors.InsufficientPrivilege):
        return None
    detail = " ".join(str(error).split())
    return UserError(f"the store {where} refused this user ({detail}); writers (CI) need SELECT and INSERT on "
                     "its tables, schema changes need the owner: run `evalhub migrate --db URL` as the owner "
                     "(docs/team.md)")
