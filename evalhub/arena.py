"""`evalhub arena MODEL MODEL MODEL...`: the recipe. Many models (adapters of one base, full models, tags)
answer the same golden items, every pair (or each model against `--anchor`) is judged blind in both orders
exactly as compare judges its two models, and the models are rated (Bradley-Terry with item-bootstrap CIs),
ranked, and compared pair by pair (win rates with CIs, Holm-corrected sign tests).

It reads top to bottom like compare: check every input, then the stages (generations, then one judged pair
after another), each checkpointed in the run's work folder (the generations as they arrive, each pair when
it is judged, and the judge's cache covers a pair killed half way), then summarise, store (one transaction)
and report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalhub import arena_stages as stages
from evalhub import workdir
from evalhub.compare import _resumable_on_interrupt, say
from evalhub.contracts import ArenaRequest, ArenaSummary
from evalhub.golden import load_golden
from evalhub.models import describe_named
from evalhub.quiet import library_output_to
from evalhub.stages import namespaced_items, report_failed_generations


@dataclass
class ArenaResult:
    run_id: str
    summary: ArenaSummary
    report_markdown: Path
    report_html: Path


def run_arena(request: ArenaRequest, db, report_dir: Path, resume: str | None = None,
              verbose: bool = False) -> ArenaResult:
    """Run (or resume) one arena and return its summary."""
    if resume:
        request = workdir.load_request(db, resume, ArenaRequest)

    # 1. Check every input before anything is spent: the models (tags resolved, weights hashed, adapters'
    # bases found), the golden sets, the judge.
    paths, tags, adapter_base = stages.resolve_models(request, db)
    refs = describe_named(paths, served=request.backend == "openai", adapter_base=adapter_base)
    stages.check_distinct(refs)
    golden = {path: load_golden(path) for path in request.golden}
    items = namespaced_items(golden)
    judge = stages.choose_judge(request)
    from evalhub.judge import check_judge, judge_options

    check_judge(judge, judge_options(request.judge_options))
    pairs = stages.plan_pairs(list(request.models), request.anchor)

    # 2. The run's work folder: a re-run of the same command, or --resume RUN, continues there.
    config = stages.run_config(request, paths, refs, judge, tags, adapter_base)
    work = workdir.open_work_folder(db, config, resume, say)

    # 3. Generations (adapters of one base from one engine, batched across them), then each pair judged in
    # both orders; library chatter goes to the work folder's log unless --verbose.
    judged: dict[tuple[str, str], dict] = {}
    with _resumable_on_interrupt(work), library_output_to(None if verbose else work.log_path, on_failure=say):
        answers = work.generations(lambda done, save: stages.generate(request, paths, adapter_base, items, done, save),
                                   say)
        report_failed_generations(answers, say)
        for k, (a, b) in enumerate(pairs, start=1):
            say(f"pair {k} of {len(pairs)}: {a} vs {b}")
            spent = stages.spent_so_far(judged)
            judged[(a, b)] = work.stage(f"judgments-pair{k}",
                                        lambda: stages.judge_pair(request, judge, items, answers, (a, b), spent), say)

    # 4. Ratings, ranks, pairs and the judge's pooled telemetry.
    summary = stages.summary(work.run_id, request, judge, judged)
    for warning in summary.warnings:
        say(f"warning: {warning}")

    # 5. Store (one transaction) and report; then the work folder has served its purpose.
    from evalhub.store._arenas import arena_exists, save_arena

    record = stages.record(work.run_id, work.created_at, request, refs, judge, config, summary, golden, answers,
                           judged)
    if not arena_exists(work.run_id, db):  # an arena killed right after its store write resumes here
        save_arena(record, db)
    markdown, html = stages.write_report(summary, report_dir)
    work.remove()
    return ArenaResult(run_id=work.run_id, summary=summary, report_markdown=markdown, report_html=html)
