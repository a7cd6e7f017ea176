"""`evalhub merge BASE ADAPTER OUT`: one float32 model equal to base+adapter, checked on a few prompts."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from evalhub.cli._app import app


@app.command()
def merge(
    base: Path = typer.Argument(..., help="The full-precision base model folder the adapter was trained on."),
    adapter: Path = typer.Argument(..., help="LoRA adapter folder (adapter_config.json + adapter_model.safetensors)."),
    out: Path = typer.Argument(..., help="New folder for the merged model (safetensors, tokenizer, merge.json)."),
    atol: float = typer.Option(1e-4, help="Largest allowed logit difference between merged and base+adapter."),
) -> None:
    """Merge a LoRA (or QLoRA) adapter into its base, reloaded in float32, and verify the merged logits."""
    from trainers.merge import merge_adapter

    with contextlib.redirect_stdout(sys.stderr):
        check = merge_adapter(base, adapter, out, atol=atol)
    print(f"merged model written to {out} (max logit difference {check.max_abs_diff:.2g} on {check.prompts} prompts)",
          file=sys.stderr)
    print(out)
