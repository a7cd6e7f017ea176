"""`evalhub rm eval RM --data PREFS.jsonl`: a reward model's preference accuracy on held-out pairs."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app

rm_app = typer.Typer(help="Reward models (from `evalhub train rm`).", no_args_is_help=True)
app.add_typer(rm_app, name="rm")


@rm_app.command("eval")
def evaluate(
    rm: str = typer.Argument(..., help="The reward model's folder (the --output of `evalhub train rm`)."),
    data: str = typer.Option(..., "--data", help="Preference JSONL: prompt/chosen/rejected, optional tags."),
    base: Optional[str] = typer.Option(None, help="The reward model's base, where it moved since training."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write n, accuracy, accuracy_ci, margin, by_tag here."),
) -> None:
    """Score every pair's chosen and rejected answer; report accuracy (chosen above rejected) with a 95% CI,
    the mean reward margin and accuracy by tag."""
    from evalhub.rm_eval import evaluate_reward_model

    shared.check_output_file(json_path, "--json")
    with contextlib.redirect_stdout(sys.stderr):
        summary = evaluate_reward_model(rm, data, base=base)
    ci = summary["accuracy_ci"]
    print(f"{rm} on {Path(data).name}: accuracy {shared.fmt(summary['accuracy'])} "
          f"[{shared.fmt(ci[0] if ci else None)}, {shared.fmt(ci[1] if ci else None)}] over {summary['n']} pairs, "
          f"mean margin {shared.fmt(summary['margin'])}")
    for tag, numbers in summary["by_tag"].items():
        print(f"  {tag}: n {numbers['n']}, accuracy {shared.fmt(numbers['accuracy'])}, "
              f"margin {shared.fmt(numbers['margin'])}")
    shared.write_json(json_path, summary)
