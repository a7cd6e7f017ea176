"""`evalhub gate [RUN|latest]`: exit 0 when every threshold passes, 1 when one fails, 2 on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.cli._options import contract_options
from evalhub.contracts import GateThresholds


@app.command()
@contract_options(flags=GateThresholds)
def gate(
    run: str = typer.Argument("latest", help="Run id (or a unique prefix), or 'latest'."),
    config: Path = shared.CONFIG,
    junit: Optional[Path] = shared.JUNIT,
    summary_md: Optional[Path] = shared.SUMMARY,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the gate result as JSON here."),
    db: Optional[str] = shared.DB,
    flags: dict = None,
) -> None:
    """Gate a deployment on a stored run's numbers."""
    from evalhub.gate import evaluate_gate
    from evalhub.store import load_run

    thresholds = shared.thresholds(config, **flags)
    shared.check_output_file(json_path, "--json")
    shared.check_output_file(junit, "--junit")
    shared.check_output_file(summary_md, "--summary")
    stored = load_run(run, shared.resolve_db(db))
    human = None
    if thresholds.min_judge_human_agreement is not None or thresholds.min_human_win_rate is not None:
        from evalhub.human import human_summary

        human = human_summary(stored["run_id"], shared.resolve_db(db))
    result = evaluate_gate(stored["summary"], thresholds, human)
    shared.emit_gate(result, stored["run_id"], junit, summary_md)
    shared.write_json(json_path, {"run_id": stored["run_id"], **result.model_dump(mode="json")})
    print(f"gate {'passed' if result.passed else 'FAILED'} for run {stored['run_id']}")
    if not result.passed:
        raise typer.Exit(1)
