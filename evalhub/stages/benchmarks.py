"""The forgetting stage: lm-eval benchmarks, base against candidate item by item (a paired bootstrap CI and
McNemar's test per task, evalhub/stats/paired.py). lm-eval loads models of its own, so this stage runs after
the engine the other stages share is released."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, Field

from evalhub.contracts import BenchmarkDelta, RunSummary
from evalhub.records import RunRecord
from evalhub.stages._stage import Results, RunContext

_ITEM_COLUMNS = ("task", "doc_id", "base_correct", "tuned_correct", "base_acc_norm", "tuned_acc_norm")


class TaskResult(BenchmarkDelta):
    """One task, base against tuned on the same items (forgetting.py's per-task summary): the summary's
    BenchmarkDelta and what the store keeps besides."""

    metric: str = "acc"
    base_acc_norm: Optional[float] = None
    tuned_acc_norm: Optional[float] = None
    n: Optional[int] = None
    task_version: Optional[str] = None
    newly_wrong: list[str] = Field(default_factory=list)


class BenchmarksResult(BaseModel):
    tasks: dict[str, TaskResult]
    items: list[dict[str, Any]]             # per-item outcomes, rows of the store's `benchmark_items`
    lm_eval_version: str
    settings: dict[str, Any]


class BenchmarksStage:
    name = "benchmarks"
    own_models = True

    def wanted(self, context: RunContext) -> bool:
        return bool(context.request.tasks)

    def run(self, context: RunContext, results: Results) -> BenchmarksResult:
        return context.checkpoint(self.name, BenchmarksResult, lambda: self._run(context))

    def _run(self, context: RunContext) -> BenchmarksResult:
        from evalhub.forgetting import benchmark_settings, compare_benchmarks

        request = context.request
        result = compare_benchmarks(base=request.base, tuned=request.tuned, tasks=list(request.tasks),
                                    tasks_path=Path(request.tasks_path) if request.tasks_path else None,
                                    backend=request.backend, settings=benchmark_settings(request.forgetting),
                                    adapter_base=request.adapter_base)
        settings = result.settings if isinstance(result.settings, dict) else asdict(result.settings)
        return BenchmarksResult(tasks={task: TaskResult(**t) for task, t in result.tasks.items()},
                                items=[{key: item.get(key) for key in _ITEM_COLUMNS} for item in result.items],
                                lm_eval_version=result.lm_eval_version, settings=settings)

    def summarize(self, result: BenchmarksResult, summary: RunSummary, context: RunContext) -> None:
        summary.benchmarks = {
            task: BenchmarkDelta(base=t.base, tuned=t.tuned, delta=t.delta, ci=t.ci, p_value=t.p_value,
                                 forgetting=t.forgetting)
            for task, t in result.tasks.items()}
        empty = [task for task, t in summary.benchmarks.items() if t.delta is None]
        if empty:
            summary.warnings.append(f"no benchmark items scored on {', '.join(empty)}")

    def store_rows(self, result: BenchmarksResult, record: RunRecord, context: RunContext) -> None:
        for task, t in result.tasks.items():
            ci = t.ci or (None, None)
            record.benchmarks.append({
                "task": task, "metric": t.metric, "base": t.base, "tuned": t.tuned, "delta": t.delta,
                "ci_lo": ci[0], "ci_hi": ci[1], "p_value": t.p_value, "forgetting": t.forgetting,
                "base_acc_norm": t.base_acc_norm, "tuned_acc_norm": t.tuned_acc_norm, "n": t.n,
                "task_version": str(t.task_version), "lm_eval_version": result.lm_eval_version,
                "settings": result.settings, "newly_wrong": t.newly_wrong})
        record.benchmark_items = list(result.items)
