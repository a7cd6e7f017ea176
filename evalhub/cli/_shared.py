"""Options and output shared by several commands (the store path, gate thresholds, the gate's outputs)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

DB = typer.Option(None, "--db", help="The DuckDB store (default: $EVALHUB_DB or ./evalhub.duckdb).")
CONFIG = typer.Option(Path("evalhub.toml"), "--config", help="evalhub.toml with a [gate] table of thresholds.")
MIN_WIN_RATE = typer.Option(None, help="Fail unless the judge win rate is at least this (0..1).")
MIN_WIN_RATE_LOWER = typer.Option(None, help="Fail unless the win rate's 95% CI lower bound is at least this.")
MAX_FORGETTING = typer.Option(None, help="Largest allowed significant accuracy drop on any task (0.02 = 2 points).")
MAX_PPL_INCREASE = typer.Option(None, help="Largest allowed perplexity increase on any data set, in percent.")
MAX_PARSE_FAILURE_RATE = typer.Option(None, help="Largest allowed share of judge calls that could not be parsed.")
MIN_POSITION_CONSISTENCY = typer.Option(None, help="Smallest allowed share of items whose two orders agree.")
JUNIT = typer.Option(None, "--junit", help="Write the gate's checks as JUnit XML here.")
SUMMARY = typer.Option(None, "--summary", help="Append the gate's Markdown summary here (default: $GITHUB_STEP_SUMMARY when set).")


def resolve_db(db: Optional[Path]) -> Path:
    from evalhub.store import default_db_path

    return Path(db) if db else default_db_path()


def thresholds(config: Path, **flags: Optional[float]):
    from evalhub.gate import GateThresholds

    return GateThresholds.from_sources(config, **flags)


def emit_gate(gate: dict, run_id: str, junit: Optional[Path], summary: Optional[Path]) -> None:
    """Print the gate's checks (stderr), write JUnit and the Markdown step summary where asked."""
    from evalhub.report import write_junit
    from evalhub.report.markdown import gate_markdown

    for check in gate["checks"]:
        mark = "pass" if check["passed"] else "FAIL"
        print(f"gate {mark}: {check['name']} = {check['value']:.4g} (threshold {check['threshold']:.4g})", file=sys.stderr)
    if junit:
        write_junit(gate, junit, run_id)
    target = summary or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(gate_markdown(gate, run_id))


def write_json(path: Optional[Path], obj: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def print_summary(summary: dict) -> None:
    """A concise base-vs-tuned table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"evalhub run {summary['run_id']}", show_lines=False)
    for column in ("measure", "base", "tuned", "verdict"):
        table.add_column(column)
    stats = summary.get("judge_stats")
    if stats:
        lo, hi = stats["win_rate_ci"]
        table.add_row(f"win rate ({summary['judge']})", "", f"{stats['win_rate']:.3f} [{lo:.3f}, {hi:.3f}]",
                      f"{stats['wins']}W {stats['ties']}T {stats['losses']}L, p={stats['p_value']:.3g}")
    for name, p in summary.get("perplexity", {}).items():
        table.add_row(f"perplexity {name}", f"{p['base']:.3f}", f"{p['tuned']:.3f}", f"{p['delta_pct']:+.1f}%")
    for task, b in summary.get("benchmarks", {}).items():
        table.add_row(f"{task} accuracy", f"{b['base']:.3f}", f"{b['tuned']:.3f}",
                      f"{b['delta']:+.3f} [{b['ci'][0]:+.3f}, {b['ci'][1]:+.3f}]" + (" FORGETTING" if b["forgetting"] else ""))
    if "gate" in summary:
        table.add_row("gate", "", "", "passed" if summary["gate"]["passed"] else "FAILED")
    Console(file=sys.stdout, width=120).print(table)
