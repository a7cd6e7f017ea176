"""A real PostgreSQL server for the tests: initdb into a temporary folder, listening on 127.0.0.1 and a free
port, with password (SCRAM) authentication over TCP. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` user (Debian's package creates it)."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

SUPERUSER = "postgres"


def find_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/VERSION/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_unavailable() -> str | None:
    if find_bin() is None:
        return ("PostgreSQL is not installed: `make test` installs it (apt-get install postgresql); "
                "the PostgreSQL store tests need initdb and pg_ctl")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to run the server as (apt-get install postgresql creates it)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One server; `url(db)` names a database on it with the superuser's password in the URL."""

    def __init__(self) -> None:
        self.bin = find_bin()
        self.password = secrets.token_hex(12)
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="evalhub-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)

    def start(self) -> "PostgresServer":
        if self._as_root:
            os.chown(self.root, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        os.chmod(self.root, 0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        done = self._run(self.bin / "initdb", "-D", self.data, "-U", SUPERUSER, "--auth-local=trust",
                         "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
        # -F: no fsync (a throwaway test server); the socket lives in the temporary folder too.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=200"
        done = self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, "-l", self.root / "server.log",
                         "-w", "-t", "60", "start")
        if done.returncode:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr[-1000:]} {log[-2000:]}")
        return self

    def stop(self) -> None:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: bool = True, user: str = SUPERUSER) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(sql)

    def new_database(self) -> str:
        """A fresh, empty database; its URL (with the password)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)
