"""`evalhub arena MODEL MODEL MODEL...`: rank many models on golden sets, every pair judged in both orders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.cli.compare import _one_judge
from evalhub.errors import UserError


@app.command()
def arena(
    models: List[str] = typer.Argument(None, metavar="MODEL MODEL...", help="Two or more models: LoRA adapter, full or base model folders, tags, or served names with --backend openai."),
    golden: List[Path] = typer.Option([], "--golden", help="Golden set JSONL; repeatable."),
    judge: List[str] = typer.Option([], "--judge", help="openai:MODEL, anthropic:MODEL, vllm:PATH, rm:PATH (a reward model) or reference (default: openai:gpt-4.1 when OPENAI_API_KEY is set)."),
    anchor: Optional[str] = typer.Option(None, help="Judge each model against this one only (one of the MODELs), not every pair."),
    adapter_base: Optional[str] = typer.Option(None, "--base", help="Where the adapters' base model is now, when it moved since training."),
    prior_sd: Optional[float] = typer.Option(None, help="Sd of the ratings' weak Gaussian prior (default 2); 0: unregularised maximum likelihood."),
    alpha: Optional[float] = typer.Option(None, help="Family-wise significance level of the pairwise tests, Holm-corrected (default 0.05)."),
    judge_base_url: Optional[str] = shared.JUDGE_BASE_URL,
    rm_tie_margin: Optional[float] = shared.RM_TIE_MARGIN,
    judge_concurrency: Optional[int] = shared.JUDGE_CONCURRENCY,
    judge_timeout: Optional[float] = shared.JUDGE_TIMEOUT,
    judge_max_retry_seconds: Optional[float] = shared.JUDGE_MAX_RETRY_SECONDS,
    max_cost: Optional[float] = typer.Option(None, help="Stop the judge cleanly before this many USD are spent (over all pairs)."),
    no_reference: bool = shared.NO_REFERENCE,
    canaries: Optional[int] = shared.CANARIES,
    backend: str = shared.BACKEND,
    base_url: List[str] = typer.Option([], "--base-url", help="OpenAI-compatible server(s) serving the MODELs; repeatable."),
    concurrency: Optional[int] = shared.CONCURRENCY,
    batch_size: Optional[int] = typer.Option(None, help="Batch size (hf backend)."),
    tensor_parallel_size: Optional[int] = shared.TENSOR_PARALLEL_SIZE,
    pipeline_parallel_size: Optional[int] = shared.PIPELINE_PARALLEL_SIZE,
    distributed_executor_backend: Optional[str] = shared.DISTRIBUTED_EXECUTOR_BACKEND,
    gpu_memory_utilization: Optional[float] = shared.GPU_MEMORY_UTILIZATION,
    max_model_len: Optional[int] = shared.MAX_MODEL_LEN,
    dtype: Optional[str] = shared.DTYPE,
    load_in_4bit: bool = shared.LOAD_IN_4BIT,
    temperature: Optional[float] = shared.TEMPERATURE,
    top_p: Optional[float] = shared.TOP_P,
    max_new_tokens: Optional[int] = shared.MAX_NEW_TOKENS,
    seed: Optional[int] = shared.SEED,
    stop: List[str] = shared.STOP,
    no_chat_template: bool = shared.NO_CHAT_TEMPLATE,
    json_path: Optional[Path] = shared.JSON_SUMMARY,
    db: Optional[str] = shared.DB,
    report_dir: Path = shared.REPORT_DIR,
    resume: Optional[str] = typer.Option(None, help="Resume the unfinished arena RUN (re-running the same command also resumes)."),
    verbose: bool = shared.VERBOSE,
) -> None:
    """Rank MODELs: all adapters of one base answer from one engine; every pair (or each model against --anchor) is
    judged in both orders; Bradley-Terry ratings with CIs, a pairwise win-rate matrix, Holm-corrected tests."""
    from evalhub.arena import run_arena
    from evalhub.contracts import ArenaRequest, build

    if not resume and len(models or []) < 2:
        raise UserError("arena needs at least two MODELs (or --resume RUN)")
    request = build(
        ArenaRequest,
        models=tuple(models or ("-", "--")), golden=tuple(str(g) for g in golden) or (("-",) if resume else ()),
        judge=_one_judge(judge), anchor=anchor, adapter_base=adapter_base,
        **shared.given(prior_sd=None if prior_sd == 0 else prior_sd, alpha=alpha),
        **({"prior_sd": None} if prior_sd == 0 else {}),
        backend=backend,
        decoding=shared.decoding(temperature, top_p, max_new_tokens, seed, stop, no_chat_template),
        backend_options=shared.backend_options(base_url, concurrency, batch_size, tensor_parallel_size,
                                               pipeline_parallel_size, distributed_executor_backend,
                                               gpu_memory_utilization, max_model_len, dtype, load_in_4bit),
        judge_options=shared.judge_options(judge_base_url, judge_concurrency, max_cost, no_reference, canaries,
                                           judge_timeout, judge_max_retry_seconds, rm_tie_margin),
    )
    db_path = shared.resolve_db(db)
    shared.check_output_file(json_path, "--json")
    shared.check_output_dir(report_dir, "--report-dir")
    result = run_arena(request, db=db_path, report_dir=report_dir, resume=resume, verbose=verbose)
    print_arena(result.summary)
    shared.write_json(json_path, result.summary.to_json())
    print(f"stored arena {result.run_id} in {db_path}; report: {result.report_html}", file=sys.stderr)


def print_arena(summary) -> None:
    """The ratings and the pairs that differ, on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    fmt, fmt_ci = shared.fmt, shared.fmt_ci
    table = Table(title=f"evalhub arena {summary.run_id} ({summary.judge_stats.judge})")
    for column in ("rank", "model", "rating [95% CI]", "comparisons"):
        table.add_column(column)
    for r in summary.ratings:
        table.add_row(fmt(r.rank, "d"), escape(r.model), f"{fmt(r.rating, '.0f')}{fmt_ci(r.ci, '.0f')}",
                      str(r.comparisons))
    pairs = Table(title="pairs (from a's side; Holm-corrected)")
    for column in ("a", "b", "W/T/L", "win rate [95% CI]", "p (Holm)", "differs"):
        pairs.add_column(column)
    for p in summary.pairs:
        pairs.add_row(escape(p.a), escape(p.b), f"{p.wins}/{p.ties}/{p.losses}",
                      f"{fmt(p.win_rate)}{fmt_ci(p.win_rate_ci)}", fmt(p.p_holm, ".3g"),
                      "yes" if p.significant else "no")
    console = Console(file=sys.stdout, width=140)
    console.print(table)
    console.print(pairs)
