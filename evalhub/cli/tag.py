"""`evalhub tag set|list|rm`: names for deployed models, kept in the store."""

from __future__ import annotations

import json
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app

tag_app = typer.Typer(help="Tags: names for deployed models (e.g. production), each a path and its weights' hash.",
                      no_args_is_help=True)
app.add_typer(tag_app, name="tag")


@tag_app.command("set")
def set_(
    name: str = typer.Argument(..., help="The tag, e.g. production."),
    model: str = typer.Argument(..., help="A model folder or LoRA adapter folder (or another tag)."),
    adapter_base: Optional[str] = typer.Option(None, "--base", help="Where an adapter's base model is now, if it moved."),
    db: Optional[str] = shared.DB,
) -> None:
    """Point NAME at MODEL, recording its weights' hash: a compare against NAME refuses weights changed since."""
    from evalhub.tags import set_tag

    tag = set_tag(name, model, shared.resolve_db(db), adapter_base)
    print(f"{tag['name']} -> {tag['path']} ({tag['kind']}, weights {tag['weights_hash'][:12]})")


@tag_app.command("list")
def list_(db: Optional[str] = shared.DB,
          as_json: bool = typer.Option(False, "--json", help="Print the tags as JSON.")) -> None:
    """Every tag: its name, model path, kind, weights hash and when it was set."""
    from evalhub.store import list_tags

    tags = list_tags(shared.resolve_db(db))
    if as_json:
        print(json.dumps(tags, default=str, indent=2))
        return
    for tag in tags:
        print(f"{tag['name']}\t{tag['path']}\t{tag['kind']}\t{tag['weights_hash'][:12]}\t{tag['created_at']}")
    if not tags:
        print("no tags yet; `evalhub tag set production MODEL` names the deployed model")


@tag_app.command("rm")
def rm(name: str = typer.Argument(..., help="The tag to remove."), db: Optional[str] = shared.DB) -> None:
    """Remove the tag NAME (the model itself is untouched)."""
    from evalhub.tags import remove_tag

    remove_tag(name, shared.resolve_db(db))
    print(f"removed tag {name}")
