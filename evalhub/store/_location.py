"""Where a store lives: a DuckDB file (the default, one machine) or a PostgreSQL database (a team's shared
store), parsed once from `--db` or `EVALHUB_DB`.

A PostgreSQL URL may carry a password; it is kept only to connect. Everything that prints, logs or stores a
location uses `str(location)`, which leaves the password out (libpq also finds it in PGPASSWORD or .pgpass).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union
from urllib.parse import urlsplit, urlunsplit

from evalhub.errors import UserError

DEFAULT_FILE = "evalhub.duckdb"
_SCHEMES = ("postgresql", "postgres")
# A URL that went through pathlib (Path("postgresql://h/db") is "postgresql:/h/db") gets its slash back.
_SQUASHED = re.compile(r"^(postgres(?:ql)?):/(?!/)", re.IGNORECASE)


@dataclass(frozen=True)
class StoreLocation:
    """A DuckDB file (`path`) or a PostgreSQL database (`url`, which may hold a password: never print it)."""

    engine: str                                   # 'duckdb' or 'postgres'
    path: Path | None = None
    url: str | None = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine == "postgres"

    @property
    def display(self) -> str:
        """The location as printed: the URL without its password."""
        return str(self.path) if self.path is not None else redact(self.url or "")

    def __str__(self) -> str:
        return self.display

    def __repr__(self) -> str:
        return f"StoreLocation({self.engine}, {self.display})"

    def child_env(self) -> dict[str, str]:
        """Environment for a child process (the app) reading this store: EVALHUB_DB without the password, which
        moves to PGPASSWORD, so the URL it shows never holds it."""
        if not self.is_postgres:
            return {"EVALHUB_DB": str(self.path)}
        env = {"EVALHUB_DB": self.display}
        password = urlsplit(self.url).password
        if password:
            from urllib.parse import unquote

            env["PGPASSWORD"] = unquote(password)
        return env

    def work_root(self) -> Path:
        """Where unfinished runs keep their checkpoints: beside a store file; for a database, in the working
        folder (a CI job's checkout), one folder per database."""
        if self.path is not None:
            return self.path.resolve().parent / ".evalhub-work"
        parts = urlsplit(self.url)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{parts.hostname or 'local'}_{parts.port or 5432}_{parts.path.strip('/')}")
        return Path.cwd() / ".evalhub-work" / f"pg-{name}"


StoreArg = Union[StoreLocation, Path, str, None]


def redact(url: str) -> str:
    """`url` with any password replaced by nothing: postgresql://user@host:port/db."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc}" if user else netloc))


def is_postgres_url(value: str) -> bool:
    return value.split(":", 1)[0].lower() in _SCHEMES and "://" in value


def location(db: StoreArg = None) -> StoreLocation:
    """The store named by `db` (a path, a PostgreSQL URL, a location), else by EVALHUB_DB, else ./evalhub.duckdb."""
    if isinstance(db, StoreLocation):
        return db
    text = str(db) if db is not None and str(db) != "" else (os.environ.get("EVALHUB_DB") or DEFAULT_FILE)
    text = _SQUASHED.sub(r"\1://", text)
    if is_postgres_url(text):
        parts = urlsplit(text)
        if not parts.hostname and not parts.path.strip("/"):
            raise UserError(f"--db {redact(text)}: name a server and database, as in postgresql://user@host:5432/evalhub")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise UserError(f"--db {redact(text)}: the port is not a number; "
                            "use postgresql://user@host:5432/dbname") from None
        return StoreLocation("postgres", url=text)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise UserError(f"--db {redact(text)}: only DuckDB files and postgresql:// URLs are stores; "
                        "pass a file path or postgresql://user@host:port/dbname")
    path = Path(text)
    if path.is_dir():
        raise UserError(f"--db {path}: is a folder; pass a store file such as {path / DEFAULT_FILE}")
    return StoreLocation("duckdb", path=path)
