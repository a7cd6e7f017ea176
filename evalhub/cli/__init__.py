"""The `evalhub` command line. One module per command; heavy libraries are imported inside command bodies,
so `evalhub --help` stays fast and works without the optional extras."""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading

from evalhub.cli._app import app
from evalhub.errors import Interrupted, UserError

COMMAND_MODULES = ["compare", "gate", "runs", "demo", "toy", "golden", "leaderboard", "train", "merge", "bench",
                   "serve", "perplexity", "importing", "tag", "arena", "judge", "train_rl", "rm", "review"]


def main() -> None:
    # vLLM logs every engine's full configuration at INFO: the command's own progress drowns in it.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    for name in COMMAND_MODULES:
        importlib.import_module(f"evalhub.cli.{name}")
    try:
        app()
    except UserError as error:
        # One line naming the fix; exit 2 means "bad input or usage" everywhere in evalhub.
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as interrupted:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("interrupted: nothing was stored; re-run the command to start again", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("EVALHUB_TRACEBACK"):
            raise
        print(f"error: evalhub failed unexpectedly ({type(error).__name__}: {error}); this is a bug — set "
              "EVALHUB_TRACEBACK=1 to see where, and report it", file=sys.stderr)
        sys.exit(3)


def run() -> None:
    """The `evalhub` command (console script and `python -m evalhub`): `main`, then a quick exit."""
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    exit_quickly(code)


def exit_quickly(code) -> None:
    """Exit with `code` as sys.exit would, without the interpreter's teardown once torch is loaded: freeing the
    objects of thousands of modules and the native libraries' state then takes seconds (2.3 s after a demo,
    measured from the last exit handler), which every command that ran a model, and every test that runs one,
    paid. The exit handlers still run; with another thread still working, the ordinary exit waits for it."""
    working = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if "torch" not in sys.modules or working:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it anyway
            pass
    os._exit(code)
