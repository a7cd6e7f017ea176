"""`evalhub golden validate FILE`: check a golden set before anything is spent on it."""

from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli._app import app

golden_app = typer.Typer(help="Golden sets: JSONL files of prompts with ideal answers.", no_args_is_help=True)
app.add_typer(golden_app, name="golden")


@golden_app.command("validate")
def validate(files: List[Path] = typer.Argument(..., help="Golden set JSONL file(s).")) -> None:
    """Check golden sets: JSON per line, id/instruction/output present, unique ids (within a file and, as
    compare requires, across the files given), UTF-8. Exit 2 naming file:line on the first problem; writes
    nothing."""
    from evalhub.golden import load_golden
    from evalhub.stages.inputs import namespaced_items

    golden = {str(path): load_golden(path) for path in files}
    namespaced_items(golden)  # compare's own check: an id in two sets is refused
    for path, items in golden.items():
        tags = Counter(tag for item in items for tag in item.tags)
        with_input = sum(bool(item.input) for item in items)
        top = ", ".join(f"{tag} {count}" for tag, count in tags.most_common(5))
        print(f"{path}: {len(items)} items ok ({with_input} with input; tags: {top or 'none'})")


@golden_app.command("plan")
def plan(
    effect: float = typer.Option(..., "--effect", help="Smallest win-rate difference from a tie (0.5) to detect, "
                                                       "e.g. 0.05 for 55% against 50%."),
    tie_rate: float = typer.Option(0.0, "--tie-rate", help="Expected share of ties (a past run's ties / scored)."),
    power: float = typer.Option(0.8, "--power", help="Chance of detecting a true difference of --effect."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write items_needed, effect, tie_rate, power, "
                                                                  "alpha here."),
) -> None:
    """How many scored golden items a comparison needs to see a win-rate difference of --effect
    (a two-sided test of the mean item score, ties counted as half a win; evalhub/stats/power.py)."""
    from evalhub.cli._shared import write_json
    from evalhub.errors import UserError
    from evalhub.stats.power import items_needed

    try:
        needed = items_needed(effect, tie_rate, power, alpha)
    except ValueError as error:
        raise UserError(f"golden plan: {error}; e.g. --effect 0.05 --tie-rate 0.3 --power 0.8 --alpha 0.05") from None
    print(f"{needed} scored items detect a win rate {effect:g} away from 0.5 with {power:.0%} power at alpha "
          f"{alpha:g}, with {tie_rate:.0%} ties. Write a few more: items the judge cannot score do not count.")
    write_json(json_path, {"items_needed": needed, "effect": effect, "tie_rate": tie_rate, "power": power,
                           "alpha": alpha})
