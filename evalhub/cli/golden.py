"""`evalhub golden validate FILE`: check a golden set before anything is spent on it."""

from collections import Counter
from pathlib import Path
from typing import List

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
