"""`evalhub arena MODEL MODEL MODEL...`: rank many models on golden sets, every pair judged in both orders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.cli.compare import _given, _one_judge
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
    judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server for the judge."),
    rm_tie_margin: Optional[float] = typer.Option(None, help="rm:PATH judge: rewards this close or closer are a tie (default 0)."),
    judge_concurrency: Optional[int] = typer.Option(None, help="Judge calls in flight at once."),
    judge_timeout: Optional[float] = typer.Option(None, help="Seconds to wait for one judge reply (default 60)."),
    judge_max_retry_seconds: Optional[float] = typer.Option(None, help="Seconds of retries per judge call before the run stops."),
    max_cost: Optional[float] = typer.Option(None, help="Stop the judge cleanly before this many USD are spent (over all pairs)."),
    no_reference: bool = typer.Option(False, "--no-reference", help="Do not show the judge the ideal answer."),
    canaries: Optional[int] = typer.Option(None, help="Extra ideal-vs-non-answer pairs that check the judge works."),
    backend: str = typer.Option("auto", help="auto | vllm | hf | openai"),
    base_url: List[str] = typer.Option([], "--base-url", help="OpenAI-compatible server(s) serving the MODELs; repeatable."),
    concurrency: Optional[int] = typer.Option(None, help="Generation requests in flight (openai backend)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size (hf backend)."),
    tensor_parallel_size: Optional[int] = typer.Option(None, help="vLLM tensor parallel size."),
    pipeline_parallel_size: Optional[int] = typer.Option(None, help="vLLM pipeline parallel size."),
    distributed_executor_backend: Optional[str] = typer.Option(None, help="vLLM executor: mp or ray (multi-node)."),
    gpu_memory_utilization: Optional[float] = typer.Option(None, help="vLLM memory fraction (CPU: of RAM)."),
    max_model_len: Optional[int] = typer.Option(None, help="vLLM context length."),
    dtype: Optional[str] = typer.Option(None, help="Model dtype, e.g. float32, bfloat16."),
    load_in_4bit: bool = typer.Option(False, "--load-in-4bit", help="hf backend: 4-bit NF4 base through bitsandbytes."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default 0: greedy)."),
    top_p: Optional[float] = typer.Option(None),
    max_new_tokens: Optional[int] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    stop: List[str] = typer.Option([], "--stop", help="Stop string; repeatable."),
    no_chat_template: bool = typer.Option(False, "--no-chat-template", help="Send the raw prompt, no chat template."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the machine-readable summary here."),
    db: Optional[str] = shared.DB,
    report_dir: Path = typer.Option(Path("reports"), help="Where the Markdown and HTML reports go."),
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
        **_given(prior_sd=None if prior_sd == 0 else prior_sd, alpha=alpha),
        **({"prior_sd": None} if prior_sd == 0 else {}),
        backend=backend,
        decoding=_given(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                        stop=tuple(stop) or None, chat_template=False if no_chat_template else None),
        backend_options=_given(base_urls=tuple(base_url) or None, concurrency=concurrency, batch_size=batch_size,
                               tensor_parallel_size=tensor_parallel_size, pipeline_parallel_size=pipeline_parallel_size,
                               distributed_executor_backend=distributed_executor_backend,
                               gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                               dtype=dtype, load_in_4bit=load_in_4bit or None),
        judge_options=_given(base_url=judge_base_url, concurrency=judge_concurrency, max_cost=max_cost,
                             use_reference=False if no_reference else None, canaries=canaries,
                             timeout=judge_timeout, max_retry_seconds=judge_max_retry_seconds,
                             rm_tie_margin=rm_tie_margin),
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
