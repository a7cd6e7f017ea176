"""`evalhub compare BASELINE CANDIDATE`: every stage whose inputs are given, one run in the store, a report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.errors import UserError, first_repeat


def _pairs(values: List[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UserError(f"{flag} takes NAME=FILE, got {value!r}")
        if name in pairs:
            raise UserError(f"{flag}: the name {name!r} is given twice ({pairs[name]} and {path}); give each file its own name")
        pairs[name] = path
    return pairs


_given = shared.given


def _one_judge(judges: List[str]) -> Optional[str]:
    """For commands that take one judge (a panel is compare's)."""
    if len(judges) > 1:
        raise UserError(f"--judge is given {len(judges)} times ({', '.join(judges)}); pass one judge per run")
    return judges[0] if judges else None


def _judges(judges: List[str]) -> dict:
    """One --judge is the run's judge; two or more are a panel. A judge named twice is refused."""
    if (name := first_repeat(judges)) is not None:
        raise UserError(f"--judge {name} is given twice; name each judge of a panel once")
    if len(judges) > 1:
        return {"judge": None, "judges": tuple(judges)}
    return {"judge": judges[0] if judges else None}


@app.command()
def compare(
    base: Optional[str] = typer.Argument(None, metavar="BASELINE", help="The baseline: a base model, LoRA adapter or full model folder, a tag (evalhub tag), or a served name with --backend openai."),
    tuned: Optional[str] = typer.Argument(None, metavar="CANDIDATE", help="The candidate: a LoRA adapter, full model or base model folder, a tag, or a served name."),
    adapter_base: Optional[str] = typer.Option(None, "--base", help="Where the adapters' base model is now, when it moved since training (default: adapter_config.json's)."),
    golden: List[Path] = typer.Option([], "--golden", help="Golden set JSONL; repeatable. Runs generations and the judge."),
    judge: List[str] = typer.Option([], "--judge", help="openai:MODEL, anthropic:MODEL, vllm:PATH, rm:PATH (a reward model) or reference (default: openai:gpt-4.1 when OPENAI_API_KEY is set); repeat it for a panel of judges."),
    judge_protocol: Optional[str] = typer.Option(None, "--judge-protocol", help="pairwise (default), arena-hard, or a protocol .toml file."),
    rm_tie_margin: Optional[float] = shared.RM_TIE_MARGIN,
    judge_base_url: Optional[str] = shared.JUDGE_BASE_URL,
    judge_concurrency: Optional[int] = shared.JUDGE_CONCURRENCY,
    judge_timeout: Optional[float] = shared.JUDGE_TIMEOUT,
    judge_max_retry_seconds: Optional[float] = shared.JUDGE_MAX_RETRY_SECONDS,
    max_cost: Optional[float] = typer.Option(None, help="Stop the judge cleanly before this many USD are spent."),
    no_reference: bool = shared.NO_REFERENCE,
    canaries: Optional[int] = shared.CANARIES,
    perplexity_data: List[str] = typer.Option([], "--perplexity-data", help="NAME=FILE (.txt or .jsonl with 'text'); repeatable."),
    window: Optional[int] = typer.Option(None, help="Perplexity window in tokens."),
    stride: Optional[int] = typer.Option(None, help="Perplexity stride in tokens."),
    tasks: Optional[str] = typer.Option(None, help="lm-eval tasks, comma separated: forgetting benchmarks."),
    tasks_path: Optional[Path] = typer.Option(None, help="Folder of local lm-eval task YAML files."),
    num_fewshot: Optional[int] = typer.Option(None, help="Few-shot examples for the benchmarks."),
    limit: Optional[int] = typer.Option(None, help="Benchmark items per task (for a quick look)."),
    train_data: Optional[Path] = typer.Option(None, help="The tuned model's training file: golden items overlapping it are reported."),
    strict: bool = typer.Option(False, "--strict", help="Make golden/training overlap an error."),
    backend: str = shared.BACKEND,
    base_url: List[str] = typer.Option([], "--base-url", help="OpenAI-compatible server(s) serving BASELINE and CANDIDATE; repeatable."),
    concurrency: Optional[int] = shared.CONCURRENCY,
    batch_size: Optional[int] = typer.Option(None, help="Batch size (hf backend and benchmarks)."),
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
    gate: bool = typer.Option(False, "--gate", help="Apply the gate thresholds (flags or evalhub.toml) at the end."),
    min_win_rate: Optional[float] = shared.MIN_WIN_RATE,
    min_win_rate_lower: Optional[float] = shared.MIN_WIN_RATE_LOWER,
    max_forgetting: Optional[float] = shared.MAX_FORGETTING,
    max_ppl_increase: Optional[float] = shared.MAX_PPL_INCREASE,
    max_parse_failure_rate: Optional[float] = shared.MAX_PARSE_FAILURE_RATE,
    min_position_consistency: Optional[float] = shared.MIN_POSITION_CONSISTENCY,
    min_judge_agreement: Optional[float] = shared.MIN_JUDGE_AGREEMENT,
    min_judge_human_agreement: Optional[float] = shared.MIN_JUDGE_HUMAN_AGREEMENT,
    config: Path = shared.CONFIG,
    junit: Optional[Path] = shared.JUNIT,
    summary_md: Optional[Path] = shared.SUMMARY,
    json_path: Optional[Path] = shared.JSON_SUMMARY,
    db: Optional[str] = shared.DB,
    report_dir: Path = shared.REPORT_DIR,
    resume: Optional[str] = typer.Option(None, help="Resume the unfinished run RUN (re-running the same command also resumes)."),
    verbose: bool = shared.VERBOSE,
) -> None:
    """Compare CANDIDATE with BASELINE (any two models: an adapter with its base, a new adapter with production):
    judge win rate, perplexity, forgetting; store, report and optionally gate."""
    from evalhub.compare import run_compare
    from evalhub.contracts import CompareRequest, build

    if not resume and (base is None or tuned is None):
        raise UserError("compare needs BASELINE and CANDIDATE (or --resume RUN)")
    flags = shared.threshold_flags(locals())
    thresholds = None
    if gate or any(v is not None for v in flags.values()):
        thresholds = shared.thresholds(config, **flags)
        if not thresholds.any():
            raise UserError("--gate needs thresholds: pass e.g. --min-win-rate 0.5 or add a [gate] table to evalhub.toml")
    request = build(
        CompareRequest,
        base=base or "", tuned=tuned or "", adapter_base=adapter_base, golden=tuple(str(g) for g in golden), **_judges(judge),
        perplexity_data=_pairs(perplexity_data, "--perplexity-data"), perplexity_window=window, perplexity_stride=stride,
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks else (),
        tasks_path=str(tasks_path) if tasks_path else None,
        training_data=str(train_data) if train_data else None, strict_contamination=strict, backend=backend,
        decoding=shared.decoding(temperature, top_p, max_new_tokens, seed, stop, no_chat_template),
        backend_options=shared.backend_options(base_url, concurrency, batch_size, tensor_parallel_size,
                                               pipeline_parallel_size, distributed_executor_backend,
                                               gpu_memory_utilization, max_model_len, dtype, load_in_4bit),
        judge_options=shared.judge_options(judge_base_url, judge_concurrency, max_cost, no_reference, canaries,
                                           judge_timeout, judge_max_retry_seconds, rm_tie_margin, protocol=judge_protocol),
        forgetting=_given(num_fewshot=num_fewshot, limit=limit, batch_size=batch_size, dtype=dtype),
        thresholds=thresholds,
    )
    db_path = shared.resolve_db(db)
    shared.check_output_file(json_path, "--json")
    shared.check_output_file(junit, "--junit")
    shared.check_output_file(summary_md, "--summary")
    shared.check_output_dir(report_dir, "--report-dir")
    result = run_compare(request, db=db_path, report_dir=report_dir, resume=resume, verbose=verbose)
    shared.print_summary(result.summary)
    shared.write_json(json_path, result.summary.to_json())
    print(f"stored run {result.run_id} in {db_path}; report: {result.report_html}", file=sys.stderr)
    if result.summary.gate is not None:
        shared.emit_gate(result.summary.gate, result.run_id, junit, summary_md)
        if not result.summary.gate.passed:
            raise typer.Exit(1)
