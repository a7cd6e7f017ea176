"""`evalhub app`: the Streamlit leaderboard (the packaged script evalhub/app/main.py), bound to 127.0.0.1.

(Not named cli/app.py: a submodule `app` would shadow the package's typer `app` object.)
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.errors import UserError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _check_port(port: int) -> None:
    # Port 0 would let the system pick one the user is never told; 65535 is the largest TCP port.
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port} is not a TCP port; pass --port between 1 and 65535 (default 8501)")


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); pass another --port") from None


@app.command("app")
def app_command(
    db: Optional[str] = shared.DB,
    port: int = typer.Option(8501, help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", help="Address to bind. Anything but 127.0.0.1 shows your results to the network."),
) -> None:
    """Start the leaderboard (Streamlit) on http://HOST:PORT, reading the store read-only."""
    from evalhub.resources import app_script
    from evalhub.store import location

    _check_port(port)
    script = app_script()
    if not script.is_file():
        raise UserError(f"the app script {script} is missing from this installation; reinstall evalhub "
                        "(pip install --force-reinstall evalhub, or pip install -e . in the repository)")
    where = shared.resolve_db(db)
    if where.path is not None:
        where = location(where.path.resolve())
    _check_port_free(host, port)
    if host not in LOOPBACK:
        print(f"evalhub app: warning: listening on {host}: other machines can read this store's results; "
              "put an authenticating reverse proxy in front (docs/team.md)", file=sys.stderr)
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port),
        # XSRF and CORS protection: Streamlit's defaults, stated so no config file in the working folder can
        # turn them off.
        "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
        "--server.headless", "true",            # no first-run e-mail prompt, no browser opened on a server
        "--browser.gatherUsageStats", "false",  # nothing leaves the machine
        "--server.fileWatcherType", "none",     # a results viewer: no need to watch the source tree for edits
        "--client.toolbarMode", "viewer",       # no "Deploy" button or developer menu
    ]
    print(f"evalhub app: http://{host}:{port}  (store: {where}; Ctrl+C stops it)", file=sys.stderr, flush=True)
    # Become the Streamlit server rather than wrap it: signals (Ctrl+C, a supervisor's SIGTERM) reach the
    # server itself, and no orphaned server outlives a killed wrapper.
    # The store's URL reaches the app without its password (moved to PGPASSWORD), so the page never shows it.
    os.execve(sys.executable, command, {**os.environ, **where.child_env()})
