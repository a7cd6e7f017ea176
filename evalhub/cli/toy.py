"""`evalhub toy build`: the offline toy world every test and the demo run on."""

from pathlib import Path
from typing import Optional

import typer

from evalhub.cli._app import app

toy_app = typer.Typer(help="The offline toy world: a tiny model of one family (Llama by default), its tokenizer and data sets.", no_args_is_help=True)
app.add_typer(toy_app, name="toy")


@toy_app.command("build")
def build(
    arch: str = typer.Option("llama", help="Model family: llama, qwen2, mistral, gemma2 or phi3."),
    seed: int = typer.Option(0, help="Seed of the world; the same seed gives the same files."),
    out: Optional[Path] = typer.Option(None, help="Folder to build into (default: a cache folder keyed by content hash)."),
) -> None:
    """Build (or reuse) the toy world and print its folder."""
    from evalhub.toy import build_toy_world

    print(build_toy_world(seed=seed, out=out, arch=arch))
