"""Options and output shared by several commands: the store path, gate thresholds, output paths checked
before any work, and the summary and gate as the terminal shows them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from evalhub.errors import UserError

DB = typer.Option(None, "--db", metavar="PATH|URL",
                  help="The store: a DuckDB file or postgresql://user@host:port/dbname (password from the URL, "
                       "PGPASSWORD or ~/.pgpass; default: $EVALHUB_DB or ./evalhub.duckdb).")
CONFIG = typer.Option(Path("evalhub.toml"), "--config", help="evalhub.toml with a [gate] table of thresholds.")
JUNIT = typer.Option(None, "--junit", help="Write the gate's checks as JUnit XML here.")
SUMMARY = typer.Option(None, "--summary", help="Append the gate's Markdown summary here (default: $GITHUB_STEP_SUMMARY when set).")
VERBOSE = typer.Option(False, "--verbose", help="Show library output (engines, transformers, lm-eval) on the terminal "
                                                "instead of the run's log file.")

JSON_SUMMARY = typer.Option(None, "--json", help="Write the machine-readable summary here.")
REPORT_DIR = typer.Option(Path("reports"), help="Where the Markdown and HTML reports go.")

MISSING = "–"  # what every view shows for a value the run could not measure


def resolve_db(db: Optional[str | Path]):
    """The store `--db` names (a DuckDB file or a PostgreSQL URL), else $EVALHUB_DB, else ./evalhub.duckdb,
    as a StoreLocation; printing it never shows a password. A folder is refused, and a PostgreSQL store is
    connected to once, so a bad URL, a wrong password or a server that is down stops the command before any
    work, in one line."""
    from evalhub.store import check_reachable, location

    where = location(db)
    check_reachable(where)
    return where


def thresholds(config: Path, **flags: Optional[float]):
    from evalhub.gate import load_thresholds

    return load_thresholds(config, **flags)


# ---------------------------------------------------------------- output paths, checked before the work

def check_output_file(path: Optional[Path], flag: str) -> None:
    """An output file must be creatable: not a folder, its folder creatable and writable. Checked before any
    work, so a typo cannot cost a whole run (or leave a stored run without its JSON)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; pass a file path")
    folder = _existing_ancestor(path.parent)
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: {folder} is a file, not a folder; pass another path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path}: not writable; pass a path you can write to")


def check_output_dir(path: Optional[Path], flag: str, must_be_empty: bool = False) -> None:
    """An output folder must be a folder (or creatable as one) and writable; `must_be_empty` refuses one that
    already holds files, so outputs never mix with others."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file; pass a folder")
    folder = _existing_ancestor(path)
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: {folder} is a file, not a folder; pass another path")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{flag} {path}: not writable; pass a folder you can write to")
    if must_be_empty and path.is_dir() and any(path.iterdir()):
        raise UserError(f"{flag} {path}: the folder is not empty; pass a new or empty folder")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def write_json(path: Optional[Path], obj: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- the summary and gate on the terminal

def fmt(value, spec: str = ".3f") -> str:
    """A number for people: "–" when the run could not measure it."""
    return MISSING if value is None else format(value, spec)


def fmt_ci(ci, spec: str = ".3f") -> str:
    return "" if not ci else f" [{format(ci[0], spec)}, {format(ci[1], spec)}]"


def emit_gate(gate, run_id: str, junit: Optional[Path], summary: Optional[Path]) -> None:
    """Print the gate's checks (stderr), write JUnit and the Markdown step summary where asked."""
    from evalhub.report import write_junit
    from evalhub.report.markdown import gate_markdown

    for check in gate.checks:
        mark = "pass" if check.passed else "FAIL"
        why = f" ({check.detail})" if check.detail else ""
        print(f"gate {mark}: {check.name} = {fmt(check.value, '.4g')} (threshold {check.threshold:.4g}){why}",
              file=sys.stderr)
    if junit:
        write_junit(gate, junit, run_id)
    target = summary or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(gate_markdown(gate, run_id))


def print_summary(summary) -> None:
    """A concise base-vs-tuned table on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"evalhub run {summary.run_id}", show_lines=False)
    for column in ("measure", "base", "tuned", "verdict"):
        table.add_column(column)
    stats = summary.judge_stats
    if stats:
        table.add_row(escape(f"win rate ({summary.judge})"), "", f"{fmt(stats.win_rate)}{fmt_ci(stats.win_rate_ci)}",
                      f"{stats.wins}W {stats.ties}T {stats.losses}L, p={fmt(stats.p_value, '.3g')}, "
                      f"{stats.scored} of {stats.n} scored")
        if stats.mde is not None:
            table.add_row("smallest visible difference", "", fmt(stats.mde, ".2f"),
                          f"{stats.inconsistent or 0} order-flipped items" if stats.inconsistent is not None else "")
    for name, p in (summary.perplexity or {}).items():
        table.add_row(escape(f"perplexity {name}"), fmt(p.base), fmt(p.tuned), fmt(p.delta_pct, "+.1f") + "%")
    for task, b in (summary.benchmarks or {}).items():
        table.add_row(escape(f"{task} accuracy"), fmt(b.base), fmt(b.tuned),
                      f"{fmt(b.delta, '+.3f')}{fmt_ci(b.ci, '+.3f')}" + (" FORGETTING" if b.forgetting else ""))
    if summary.gate is not None:
        table.add_row("gate", "", "", "passed" if summary.gate.passed else "FAILED")
    Console(file=sys.stdout, width=120).print(table)
