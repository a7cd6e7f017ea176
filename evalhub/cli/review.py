"""`evalhub review import|export`: blind human votes gathered elsewhere, and a run's votes as a calibration
file for the next judge."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app

review_app = typer.Typer(help="Human votes: import them from JSONL, export a run's as a `judge calibrate` file.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("import")
def import_(votes: Path = typer.Argument(..., help='JSONL, one vote a line: {"run_id", "item_id", "reviewer", '
                                                   '"verdict": "candidate"|"baseline"|"tie"}, optional golden_file, note.'),
            db: Optional[str] = shared.DB) -> None:
    """Store votes from VOTES.jsonl (all or none; a reviewer's new vote on an item replaces the old one)."""
    from evalhub.review import import_votes

    count = import_votes(votes, shared.resolve_db(db))
    print(f"stored {count} votes", file=sys.stderr)


@review_app.command("export")
def export(run: str = typer.Argument(..., help="Run id, a unique prefix, or 'latest'."),
           calibration: Path = typer.Option(..., "--calibration", help="The `judge calibrate` file to write."),
           db: Optional[str] = shared.DB) -> None:
    """Write RUN's voted items as a `judge calibrate` file: answer_a is the candidate, human the reviewers' verdict."""
    from evalhub.review import export_calibration
    from evalhub.store import load_run

    where = shared.resolve_db(db)
    count = export_calibration(load_run(run, where)["run_id"], calibration, where)
    print(f"wrote {count} pairs to {calibration}", file=sys.stderr)
