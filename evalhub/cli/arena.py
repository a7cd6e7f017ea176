"""`evalhub arena MODEL MODEL MODEL...`: rank many models on golden sets, every pair judged in both orders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.cli._options import contract_options
from evalhub.cli.compare import _one_judge
from evalhub.contracts import ArenaRequest, BackendSettings, DecodingSettings, JudgeSettings
from evalhub.errors import UserError


@app.command()
@contract_options(request=ArenaRequest, decoding=DecodingSettings, backend_options=BackendSettings,
                  judge_options=JudgeSettings)
def arena(
    models: List[str] = typer.Argument(None, metavar="MODEL MODEL...", help="Two or more models: LoRA adapter, full or base model folders, tags, or served names with --backend openai."),
    golden: List[Path] = typer.Option([], "--golden", help="Golden set JSONL; repeatable."),
    judge: List[str] = typer.Option([], "--judge", help="openai:MODEL, anthropic:MODEL, vllm:PATH, rm:PATH (a reward model) or reference (default: openai:gpt-4.1 when OPENAI_API_KEY is set)."),
    json_path: Optional[Path] = shared.JSON_SUMMARY,
    db: Optional[str] = shared.DB,
    report_dir: Path = shared.REPORT_DIR,
    resume: Optional[str] = typer.Option(None, help="Resume the unfinished arena RUN (re-running the same command also resumes)."),
    verbose: bool = shared.VERBOSE,
    request: dict = None, decoding: dict = None, backend_options: dict = None, judge_options: dict = None,
) -> None:
    """Rank MODELs: all adapters of one base answer from one engine; every pair (or each model against --anchor) is
    judged in both orders; Bradley-Terry ratings with CIs, a pairwise win-rate matrix, Holm-corrected tests."""
    from evalhub.arena import run_arena
    from evalhub.contracts import build

    if not resume and len(models or []) < 2:
        raise UserError("arena needs at least two MODELs (or --resume RUN)")
    request = build(
        ArenaRequest,
        models=tuple(models or ("-", "--")), golden=tuple(str(g) for g in golden) or (("-",) if resume else ()),
        judge=_one_judge(judge), **request, decoding=decoding, backend_options=backend_options,
        judge_options=judge_options,
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
