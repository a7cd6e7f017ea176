"""Quiet by default: while a run's stages work, library output goes to a log file, not the terminal.

vLLM, transformers, lm-eval, TRL and their subprocesses (vLLM's engine core) write warnings and progress bars
straight to the process's standard output and error, through handlers they set up when first imported.
Rebinding Python's `sys.stderr` would miss most of it, so the file descriptors 1 and 2 themselves are pointed
at the log for the duration; evalhub's own progress lines (`progress()`) go to the terminal saved before.
The log's path is printed when the run fails, and `--verbose` turns all of this off.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, TextIO

_terminal: TextIO | None = None  # the saved standard error while library output is redirected


def terminal() -> TextIO:
    """The terminal's standard error, even while library output is redirected (for evalhub's own bars)."""
    return _terminal or sys.stderr


def progress(message: str) -> None:
    """One line of evalhub's own progress, always on the terminal's standard error."""
    print(message, file=terminal(), flush=True)


@contextlib.contextmanager
def library_output_to(log_path: Path | None, on_failure: Callable[[str], None]) -> Iterator[None]:
    """Send everything written to stdout/stderr inside the block to `log_path` (appended); None: leave it be."""
    global _terminal
    if log_path is None or _terminal is not None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    log = open(log_path, "ab", buffering=0)
    _terminal = open(os.dup(saved[2]), "w", buffering=1, encoding="utf-8", errors="replace")
    failed = False
    try:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        yield
    except BaseException:
        failed = True
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        log.close()
        _terminal.close()
        _terminal = None
        if failed:
            on_failure(f"library output of this run is in {log_path}")
