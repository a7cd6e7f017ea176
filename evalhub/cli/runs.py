"""`evalhub runs`, `evalhub show RUN`, `evalhub export RUN|all --parquet DIR`: reading the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app


@app.command()
def runs(db: Optional[str] = shared.DB, as_json: bool = typer.Option(False, "--json", help="Print JSON lines.")) -> None:
    """List stored runs, newest first."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from evalhub.store import list_runs

    rows = list_runs(shared.resolve_db(db))
    if as_json:
        for row in rows:
            print(json.dumps({**row, "created_at": str(row["created_at"]), "summary": row["summary"].to_json()}))
        return
    table = Table()
    for column in ("run", "created", "tuned", "judge", "win rate", "gate"):
        table.add_column(column)
    for row in rows:
        stats, gate = row["summary"].judge_stats, row["summary"].gate
        table.add_row(escape(row["run_id"]), str(row["created_at"]), escape(row["tuned"]), escape(row["judge"] or shared.MISSING),
                      shared.fmt(stats.win_rate if stats else None),
                      shared.MISSING if gate is None else ("passed" if gate.passed else "FAILED"))
    Console(width=160).print(table)


@app.command()
def show(run: str = typer.Argument("latest", help="Run id, a unique prefix, or 'latest'."),
         db: Optional[str] = shared.DB,
         as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Print one run's summary."""
    from evalhub.store import load_run

    stored = load_run(run, shared.resolve_db(db))
    if as_json:
        from evalhub.human import human_summary

        document = stored["summary"].to_json()
        human = human_summary(stored["run_id"], shared.resolve_db(db))
        if human is not None:
            document["human"] = human
        print(json.dumps(document, indent=2))
    else:
        shared.print_summary(stored["summary"])


@app.command()
def export(run: str = typer.Argument(..., help="Run id, or 'all'."),
           parquet: Path = typer.Option(..., "--parquet", help="Folder to write one Parquet file per table into."),
           db: Optional[str] = shared.DB) -> None:
    """Export runs to Parquet for a warehouse."""
    from evalhub.store import export_parquet, load_run

    db_path = shared.resolve_db(db)
    shared.check_output_dir(parquet, "--parquet", must_be_empty=True)
    run_id = run if run == "all" else load_run(run, db_path)["run_id"]
    for path in export_parquet(run_id, parquet, db_path):
        print(path)
