"""`evalhub compare BASELINE CANDIDATE`: the recipe. It reads top to bottom: check every input, then run each
stage the inputs ask for (generations, judge, perplexity, forgetting benchmarks), then summarise, gate,
store and report. Each stage's result is checkpointed in the run's work folder as soon as it is done (the
generations as they arrive), so a killed compare resumes where it stopped; the judge's own cache covers a
stage killed half way. The store gets the run in one transaction at the end, so it never holds half a run.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

from evalhub import workdir
from evalhub.contracts import CompareRequest, RunSummary
from evalhub.errors import Interrupted, UserError
from evalhub.gate import evaluate_gate
from evalhub.golden import load_golden
from evalhub.models import describe_models
from evalhub.quiet import library_output_to, progress
from evalhub.records import GoldenItem
from evalhub.tags import resolve_request
from evalhub import stages

DEFAULT_JUDGE = "openai:gpt-4.1"


@dataclass
class CompareResult:
    run_id: str
    summary: RunSummary
    report_markdown: Path
    report_html: Path


def say(message: str) -> None:
    """Progress on stderr: what the run is doing, in one line."""
    progress(f"evalhub: {message}")


# ---------------------------------------------------------------- the recipe

def run_compare(request: CompareRequest, db: Path, report_dir: Path, resume: str | None = None,
                verbose: bool = False) -> CompareResult:
    """Run (or resume) one comparison and return its summary."""
    if resume:
        request = workdir.load_request(db, resume)

    # 1. Check every input before anything is spent. A tag names the model it was set on, whose weights must
    # not have changed since; BASELINE and CANDIDATE may be any two models (the summary calls them base, tuned).
    request, tags = resolve_request(request, db)
    served = request.backend == "openai"
    base_ref, tuned_ref = describe_models(request.base, request.tuned, served=served, adapter_base=request.adapter_base)
    stages.check_adapter_trained(request)
    stages.check_metric_names(request)
    golden = {path: load_golden(path) for path in request.golden}
    judge = _choose_judge(request) if golden else None
    if judge:
        from evalhub.judge import check_judge, judge_options

        for one_judge in request.judges or [judge]:  # every judge of a panel
            check_judge(one_judge, judge_options(request.judge_options))
    from evalhub.perplexity import load_texts

    perplexity_texts = {name: _nonempty_texts(name, load_texts(path)) for name, path in request.perplexity_data.items()}
    if request.tasks_path and not Path(request.tasks_path).is_dir():
        raise UserError(f"--tasks-path {request.tasks_path}: no such folder of lm-eval task YAML files")
    if not (golden or perplexity_texts or request.tasks):
        raise UserError("nothing to compare: pass --golden FILE, --perplexity-data NAME=FILE and/or --tasks T1,T2")
    context = stages.RunContext(request=request, golden=golden, items=stages.namespaced_items(golden), judge=judge,
                                perplexity_texts=perplexity_texts, db=db, say=say)
    contamination = stages.contamination(request, golden, say)

    # 2. The run's work folder: a re-run of the same command, or --resume RUN, continues there.
    config = {**workdir.run_config(request, base_ref, tuned_ref, judge), **({"tags": tags} if tags else {})}
    context.work = work = workdir.open_work_folder(db, config, resume, say)

    # 3. The stages the request wants, in order, each checkpointed. Library chatter (engines, transformers,
    # lm-eval) goes to the work folder's log unless --verbose; the log's path is printed if the run fails.
    wanted = stages.wanted_stages(context)
    results: dict[str, object] = {}
    with _resumable_on_interrupt(work), library_output_to(None if verbose else work.log_path, on_failure=say):
        from evalhub.generate import keep_models_loaded

        # The stages that share the loaded models (generations, perplexity) run in one engine start; it is
        # released before a stage that loads its own (lm-eval).
        with keep_models_loaded():
            try:  # before anything is judged: the tuned model must really differ from its base
                stages.check_adapter_applies(request, context.items, say)
            except UserError:
                work.remove()
                raise
            for stage in wanted:
                if not stage.own_models:
                    results[stage.name] = stage.run(context, results)
        for stage in wanted:
            if stage.own_models:
                results[stage.name] = stage.run(context, results)

    # 4. Summary and gate.
    summary = stages.summary(work.run_id, base_ref.path, tuned_ref.path, context, results)
    for warning in summary.warnings:
        say(f"warning: {warning}")
    if request.thresholds is not None:
        summary.gate = evaluate_gate(summary, request.thresholds)

    # 5. Store (one transaction) and report; then the work folder has served its purpose.
    record = stages.run_record(work.run_id, work.created_at, context, base_ref, tuned_ref, config, summary, results,
                               contamination)
    from evalhub.report import clearest_losses, write_report
    from evalhub.store import run_exists, save_run

    if not run_exists(work.run_id, db):  # a compare killed right after its store write resumes here
        stages.store_training_curves(tuned_ref, db)
        save_run(record, db)
    losses = clearest_losses(record.judgments, stages.answers_side_by_side(golden, results.get("generations")))
    markdown, html = write_report(summary, config, losses, report_dir)
    work.remove()
    return CompareResult(run_id=work.run_id, summary=summary, report_markdown=markdown, report_html=html)


# ---------------------------------------------------------------- checks

@contextmanager
def _resumable_on_interrupt(work) -> Iterator[None]:
    """Ctrl+C stops the stage at once; the checkpoints (and every answer saved so far) stay for the re-run."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"run {work.run_id} stopped; what was done is kept in {work.path}. Re-run the same "
                          f"command (or `evalhub compare --resume {work.run_id}`) to continue") from None


def _choose_judge(request: CompareRequest) -> str:
    if request.judges:  # a panel, named by its judges
        from evalhub.judge import panel_name

        return panel_name(request.judges)
    return named_or_default_judge(request.judge)


def named_or_default_judge(judge: str | None) -> str:
    """The judge named, or the default GPT-4-class judge when OPENAI_API_KEY is set (compare and arena alike)."""
    import os

    if judge:
        return judge
    if os.environ.get("OPENAI_API_KEY"):
        return DEFAULT_JUDGE
    raise UserError("no judge chosen: set OPENAI_API_KEY for the default GPT-4-class judge, pass --judge openai:MODEL "
                    "(with --judge-base-url for an OpenAI-compatible server), or --judge reference (offline)")


def _nonempty_texts(name: str, texts: list[str]) -> list[str]:
    if not any(text.strip() for text in texts):
        raise UserError(f"--perplexity-data {name}: the file holds no text; pass held-out text to measure")
    return texts


__all__ = ["CompareRequest", "CompareResult", "GoldenItem", "run_compare"]
