"""`evalhub demo`: the embedded default, fully offline."""

from __future__ import annotations


from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app


@app.command()
def demo(
    seed: int = typer.Option(0, help="Seed of the toy world."),
    backend: str = typer.Option("auto", help="auto | vllm | hf"),
    db: Optional[str] = shared.DB,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the run summary (as compare --json) here."),
    report_dir: Path = typer.Option(Path("reports"), help="Where the reports go."),
) -> None:
    """Build the toy world, train a LoRA adapter, compare it with its base, store and report the run."""
    from evalhub.demo import run_demo

    db_path = shared.resolve_db(db)
    shared.check_output_file(json_path, "--json")
    shared.check_output_dir(report_dir, "--report-dir")
    result = run_demo(seed=seed, db=db_path, report_dir=report_dir, backend=backend)
    shared.print_summary(result.summary)
    shared.write_json(json_path, result.summary.to_json())
    print(f"\nThe run {result.run_id} is stored in {db_path}.\nReport: {result.report_html}\n"
          f"Browse it: evalhub app --db {db_path}   Gate it: evalhub gate {result.run_id} --min-win-rate 0.5 --db {db_path}")

