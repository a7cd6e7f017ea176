"""`evalhub bench`: catastrophic-forgetting benchmarks (lm-eval tasks) on a base and its tuned model."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.errors import UserError


@app.command("bench")
def bench(
    model: str = typer.Argument(..., help="The base model folder (a Hugging Face model id with --no-store)."),
    adapter: Optional[Path] = typer.Option(
        None, help="The tuned model: a LoRA adapter folder on MODEL, or a full fine-tuned model folder. "
                   "Without it only MODEL is scored."),
    tasks: str = typer.Option(..., help="Comma-separated lm-eval task names, e.g. arc_easy,hellaswag,mmlu."),
    tasks_path: Optional[Path] = typer.Option(
        None, help="A folder of local lm-eval task YAML files (see docs/local-tasks.md)."),
    backend: str = typer.Option("auto", help="auto, vllm or hf (auto: vllm on a CUDA machine with vLLM, else hf)."),
    batch_size: int = typer.Option(8, help="lm-eval batch size, the same for both models."),
    num_fewshot: Optional[int] = typer.Option(0, help="Few-shot examples per item (the same for both models)."),
    fewshot_seed: int = typer.Option(1234, help="Seed choosing the few-shot examples."),
    max_length: Optional[int] = typer.Option(None, help="Max context length (default: the model's)."),
    dtype: str = typer.Option("float32", help="Weights dtype for both models: float32, bfloat16, float16, auto."),
    limit: Optional[float] = typer.Option(None, help="Items per task (a fraction of each task when below 1)."),
    seed: int = typer.Option(0, help="Seed of lm-eval's sampling, the bootstrap and the vLLM engine."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the per-task summary as JSON here."),
    db: Optional[str] = shared.DB,
    store: bool = typer.Option(True, help="Save the run in the store; --no-store skips it (and lets MODEL be a hub id)."),
) -> None:
    """Score MODEL and its tuned version on lm-eval tasks and say, per task, whether a drop is real or noise."""
    from evalhub.forgetting import ForgettingSettings, compare_benchmarks

    shared.check_output_file(json_path, "--json")
    if batch_size < 1 or (num_fewshot is not None and num_fewshot < 0):
        raise UserError("--batch-size must be at least 1 and --num-fewshot 0 or more")
    if limit is not None and (limit <= 0 or (limit >= 1 and limit != int(limit))):
        raise UserError(f"--limit {limit} is neither a whole number of items nor a fraction below 1")
    settings = ForgettingSettings(batch_size=batch_size, num_fewshot=num_fewshot, fewshot_seed=fewshot_seed,
                                  max_length=max_length, dtype=dtype, seed=seed,
                                  limit=int(limit) if limit is not None and limit >= 1 else limit)
    refs = None
    if store:
        # Identify (and check) the models before any time is spent: an adapter trained on another base fails here.
        from evalhub.models import describe_models

        base_ref, tuned_ref = describe_models(model, str(adapter) if adapter is not None else model)
        refs = (base_ref, tuned_ref if adapter is not None else base_ref)
    result = compare_benchmarks(base=model, tuned=adapter, tasks=tasks.split(","), tasks_path=tasks_path,
                                backend=backend, settings=settings)
    shared.write_json(json_path, result.summary())
    if refs is not None:
        run_id = _save(refs, result, db)
        print(f"stored run {run_id}", file=sys.stderr)
    _print_table(result)


def _save(refs, result, db: str | None) -> str:
    from evalhub.records import RunRecord
    from evalhub.store import save_run

    base, tuned = refs
    run_id = uuid.uuid4().hex
    run = RunRecord(
        run_id=run_id, kind="bench", created_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        base=base, tuned=tuned,
        config={"tasks": list(result.tasks), "lm_eval_version": result.lm_eval_version, **result.settings},
        summary={"benchmarks": result.summary()},
        benchmarks=result.benchmark_rows(), benchmark_items=result.items,
        metrics=[("benchmark", f"{task}.delta", s["delta"], {"p_value": s["p_value"], "forgetting": s["forgetting"]})
                 for task, s in result.tasks.items() if s["delta"] is not None],
    )
    save_run(run, db)
    return run_id


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lm-eval {result.lm_eval_version}, backend {result.backend}")
    for column in ("task", "metric", "n", "base", "tuned", "delta", "95% CI", "p", "forgetting", "newly wrong"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, s in result.tasks.items():
        ci = f"[{s['ci'][0]:+.3f}, {s['ci'][1]:+.3f}]" if s["ci"] else "-"
        table.add_row(task, s["metric"], str(s["n"]), _fmt(s["base"]), _fmt(s["tuned"]), _fmt(s["delta"], "+.3f"),
                      ci, _fmt(s["p_value"], ".3g"), "YES" if s["forgetting"] else "no", str(len(s["newly_wrong"])))
    Console(file=sys.stdout, width=140).print(table)
