"""`evalhub compare BASELINE CANDIDATE`: every stage whose inputs are given, one run in the store, a report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.cli._options import contract_options
from evalhub.contracts import (BackendSettings, CompareRequest, DecodingSettings, ForgettingSettings, GateThresholds,
                               JudgeSettings)
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
@contract_options(request=CompareRequest, decoding=DecodingSettings, backend_options=BackendSettings,
                  judge_options=JudgeSettings, forgetting=ForgettingSettings, flags=GateThresholds)
def compare(
    base: Optional[str] = typer.Argument(None, metavar="BASELINE", help="The baseline: a base model, LoRA adapter or full model folder, a tag (evalhub tag), or a served name with --backend openai."),
    tuned: Optional[str] = typer.Argument(None, metavar="CANDIDATE", help="The candidate: a LoRA adapter, full model or base model folder, a tag, or a served name."),
    golden: List[Path] = typer.Option([], "--golden", help="Golden set JSONL; repeatable. Runs generations and the judge."),
    judge: List[str] = typer.Option([], "--judge", help="openai:MODEL, anthropic:MODEL, vllm:PATH, rm:PATH (a reward model) or reference (default: openai:gpt-4.1 when OPENAI_API_KEY is set); repeat it for a panel of judges."),
    perplexity_data: List[str] = typer.Option([], "--perplexity-data", help="NAME=FILE (.txt or .jsonl with 'text'); repeatable."),
    tasks: Optional[str] = typer.Option(None, help="lm-eval tasks, comma separated: forgetting benchmarks."),
    gate: bool = typer.Option(False, "--gate", help="Apply the gate thresholds (flags or evalhub.toml) at the end."),
    config: Path = shared.CONFIG,
    junit: Optional[Path] = shared.JUNIT,
    summary_md: Optional[Path] = shared.SUMMARY,
    json_path: Optional[Path] = shared.JSON_SUMMARY,
    db: Optional[str] = shared.DB,
    report_dir: Path = shared.REPORT_DIR,
    resume: Optional[str] = typer.Option(None, help="Resume the unfinished run RUN (re-running the same command also resumes)."),
    verbose: bool = shared.VERBOSE,
    request: dict = None, decoding: dict = None, backend_options: dict = None, judge_options: dict = None,
    forgetting: dict = None, flags: dict = None,
) -> None:
    """Compare CANDIDATE with BASELINE (any two models: an adapter with its base, a new adapter with production):
    judge win rate, perplexity, forgetting; store, report and optionally gate."""
    from evalhub.compare import run_compare
    from evalhub.contracts import build

    if not resume and (base is None or tuned is None):
        raise UserError("compare needs BASELINE and CANDIDATE (or --resume RUN)")
    thresholds = None
    if gate or flags:
        thresholds = shared.thresholds(config, **flags)
        if not thresholds.any():
            raise UserError("--gate needs thresholds: pass e.g. --min-win-rate 0.5 or add a [gate] table to evalhub.toml")
    request = build(
        CompareRequest,
        base=base or "", tuned=tuned or "", golden=tuple(str(g) for g in golden), **_judges(judge),
        perplexity_data=_pairs(perplexity_data, "--perplexity-data"),
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks else (),
        **request, decoding=decoding, backend_options=backend_options, judge_options=judge_options,
        forgetting=forgetting, thresholds=thresholds,
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
