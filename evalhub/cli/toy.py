"""`evalhub toy build`: the offline toy world every test and the demo run on."""

from pathlib import Path
from typing import Optional

import typer

from evalhub.cli._app import app

toy_app = typer.Typer(help="The offline toy world: a tiny Llama, its tokenizer and data sets.", no_args_is_help=True)
app.add_typer(toy_app, name="toy")


@toy_app.command("build")
def build(
    seed: int = typer.Option(0, help="Seed of the world; the same seed gives the same files."),
    out: Optional[Path] = typer.Option(None, help="Folder to build into (default: a cache folder keyed by content hash)."),
) -> None:
    """Build (or reuse) the toy world and print its folder."""
    from evalhub.toy import build_toy_world

    print(build_toy_world(seed=seed, out=out))
