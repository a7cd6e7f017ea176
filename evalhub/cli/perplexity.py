"""`evalhub perplexity MODEL [--adapter PATH] --data FILE`: perplexity and bits-per-byte on held-out text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.errors import UserError


@app.command("perplexity")
def perplexity(
    model: str = typer.Argument(..., help="Model folder or hub id (the base when --adapter is given)."),
    data: Path = typer.Option(..., "--data", help="Plain text (.txt, the whole file) or JSONL with a 'text' field."),
    adapter: Optional[Path] = typer.Option(None, help="LoRA adapter folder: measure MODEL with it (and without it)."),
    window: Optional[int] = typer.Option(None, help="Tokens a window sees (default: the model's context less 2)."),
    stride: Optional[int] = typer.Option(None, help="Tokens scored per later window (default: the window, disjoint)."),
    backend: str = typer.Option("auto", help="auto, vllm or hf (auto: vllm where it imports, else hf)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write perplexity, bits_per_byte, tokens, bytes here."),
    dtype: str = typer.Option("auto", help="Weights dtype; auto keeps the checkpoint's."),
    max_model_len: Optional[int] = typer.Option(None, help="Context length (default: the model's)."),
    batch_size: int = typer.Option(16, help="Windows per forward pass (hf backend)."),
    load_in_4bit: bool = typer.Option(False, help="Load the weights in 4-bit NF4 through bitsandbytes (hf backend)."),
    gpu_memory_utilization: Optional[float] = typer.Option(None, help="vLLM: share of GPU memory (of RAM on CPU)."),
    kv_cache_gib: Optional[float] = typer.Option(None, help="vLLM: KV-cache size in GiB instead of a memory share."),
    tensor_parallel_size: int = typer.Option(1, help="vLLM: GPUs per model."),
) -> None:
    """Token-level perplexity over sliding windows, and bits per UTF-8 byte."""
    from evalhub.generate import BackendOptions
    from evalhub.perplexity import load_texts, measure_perplexity

    shared.check_output_file(json_path, "--json")
    for flag, value in (("--window", window), ("--stride", stride), ("--batch-size", batch_size),
                        ("--max-model-len", max_model_len), ("--tensor-parallel-size", tensor_parallel_size)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1 (got {value})")
    texts = load_texts(data)
    if not any(text.strip() for text in texts):
        raise UserError(f"{data}: holds no text; pass held-out text to measure")
    options = BackendOptions(dtype=dtype, max_model_len=max_model_len, batch_size=batch_size, load_in_4bit=load_in_4bit,
                             gpu_memory_utilization=gpu_memory_utilization, kv_cache_gib=kv_cache_gib,
                             tensor_parallel_size=tensor_parallel_size)
    results = measure_perplexity(model, str(adapter) if adapter else None, texts, window=window, stride=stride,
                                 backend=backend, options=options)
    print(f"{'model':<6} {'perplexity':>12} {'bits_per_byte':>14} {'tokens':>9} {'bytes':>9}")
    for role, result in results.items():
        print(f"{role:<6} {result.perplexity:>12.4f} {result.bits_per_byte:>14.6f} {result.tokens:>9} {result.bytes:>9}")
    if json_path:
        measured = results["tuned" if adapter else "base"]
        summary = measured.to_dict() | ({"base": results["base"].to_dict()} if adapter else {})
        _write_atomically(json_path, json.dumps(summary, indent=2) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    # A reader never sees half a file: write beside it, then rename over it.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
