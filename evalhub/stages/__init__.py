"""The stages of a comparison, each behind one interface (evalhub/stages/_stage.py): its name, whether the
request wants it, running it (checkpointed), its part of the summary and its rows for the store.

`STAGES` is their order; `evalhub.compare` runs the wanted ones, and `summary` and `run_record` are loops
over them. A new stage is a module here and a line in STAGES (docs/adding-a-stage.md).
"""

from __future__ import annotations

from evalhub.contracts import RunSummary
from evalhub.records import GoldenItem, RunRecord
from evalhub.stages._stage import Results, RunContext, Stage
from evalhub.stages.adapter_check import check_adapter_applies, check_adapter_trained
from evalhub.stages.answer_metrics import AnswerMetricsStage, check_metric_names
from evalhub.stages.benchmarks import BenchmarksStage
from evalhub.stages.generations import Answers, GenerationsResult, GenerationsStage, report_failed_generations
from evalhub.stages.inputs import contamination, namespaced_items, split_key
from evalhub.stages.judgments import JudgeStage
from evalhub.stages.perplexity import PerplexityStage
from evalhub.stages.training import store_training_curves

# In the order they run: judging and the answer metrics read the generations; lm-eval (benchmarks) loads
# models of its own, so it comes last, after the engine the others share is released.
STAGES: tuple[Stage, ...] = (GenerationsStage(), JudgeStage(), AnswerMetricsStage(), PerplexityStage(),
                             BenchmarksStage())

__all__ = ["STAGES", "Answers", "GenerationsResult", "Results", "RunContext", "Stage", "answers_side_by_side",
           "check_adapter_applies", "check_adapter_trained", "check_metric_names", "contamination",
           "namespaced_items", "report_failed_generations", "run_record", "split_key", "store_training_curves",
           "summary", "wanted_stages"]


def wanted_stages(context: RunContext) -> list[Stage]:
    return [stage for stage in STAGES if stage.wanted(context)]


def summary(run_id: str, base: str, tuned: str, context: RunContext, results: Results) -> RunSummary:
    """The run's typed summary: each stage that ran writes its part."""
    result = RunSummary(run_id=run_id, base=base, tuned=tuned)
    for stage in STAGES:
        if stage.name in results:
            stage.summarize(results[stage.name], result, context)
    return result


def run_record(run_id: str, created_at: str, context: RunContext, base_ref, tuned_ref, config: dict,
               result: RunSummary, results: Results, contamination_findings: list[dict]) -> RunRecord:
    """Everything the store writes for the run, in one transaction: the run, its golden items, and each
    stage's rows."""
    request = context.request
    record = RunRecord(run_id=run_id, kind=request.kind, created_at=created_at, base=base_ref, tuned=tuned_ref,
                       config=config, summary=result.to_json(), judge=context.judge, golden=list(request.golden))
    # The golden items travel with the run, so the app shows ideal answers wherever the store is opened.
    record.golden_items = [{"golden_file": path, "item_id": item.id, "instruction": item.instruction,
                            "input": item.input, "output": item.output, "tags": list(item.tags)}
                           for path, items in context.golden.items() for item in items]
    for stage in STAGES:
        if stage.name in results:
            stage.store_rows(results[stage.name], record, context)
    record.metrics.append(("contamination", "overlapping_golden_items", float(len(contamination_findings)),
                           {"findings": contamination_findings} if contamination_findings else None))
    return record


def answers_side_by_side(golden: dict[str, list[GoldenItem]], generations: GenerationsResult | None) -> dict[str, dict]:
    """Each item's prompt, ideal answer and both answers, keyed "golden_file::item id" (the report's losses)."""
    if generations is None:
        return {}
    answers = generations.answers
    side_by_side = {}
    for index, (path, items) in enumerate(golden.items()):
        for item in items:
            key = f"{index}:{item.id}"
            side_by_side[f"{path}::{item.id}"] = {
                "instruction": item.prompt, "ideal": item.output,
                "base": answers["base"][key].output, "tuned": answers["tuned"][key].output}
    return side_by_side
