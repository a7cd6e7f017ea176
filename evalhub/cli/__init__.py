"""The `evalhub` command line. One module per command; heavy libraries are imported inside command bodies,
so `evalhub --help` stays fast and works without the optional extras."""

from __future__ import annotations

import importlib
import os
import sys

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
