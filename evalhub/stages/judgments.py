"""The judge stage: every item's two answers judged blind in both orders, by one judge or a panel; its part
of the summary is `judge_stats` (with each judge's latest calibration against human labels), its rows the
judge calls, a panel's per-judge calls and the judge's telemetry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from evalhub.contracts import JudgeCalibration, JudgeStats, RunSummary
from evalhub.records import RunRecord
from evalhub.stages._stage import Results, RunContext


class JudgeResult(BaseModel):
    judgments: list[dict]                    # rows of the store's `judgments` (a panel's: its verdicts)
    panel_judgments: list[dict] = Field(default_factory=list)  # a panel's: every judge's own calls
    stats: JudgeStats
    telemetry: dict[str, Any] = Field(default_factory=dict)   # tokens, API errors, cache hits, ... (metrics rows)


class JudgeStage:
    name = "judgments"
    own_models = False

    def wanted(self, context: RunContext) -> bool:
        return bool(context.items) and context.judge is not None

    def run(self, context: RunContext, results: Results) -> JudgeResult:
        return context.checkpoint(self.name, JudgeResult, lambda: self._judge(context, results["generations"]))

    def _judge(self, context: RunContext, generations) -> JudgeResult:
        from evalhub.judge import judge_options, judge_pairs

        request = context.request
        outcome = judge_pairs(items=context.items, judge=list(request.judges) or context.judge,
                              options=judge_options(request.judge_options), golden_file="",
                              base=generations.answers["base"], tuned=generations.answers["tuned"])

        def by_golden_file(rows: list[dict]) -> list[dict]:
            split = []
            for row in rows:
                golden_file, item_id = context.golden_file_and_id(row["item_id"])
                split.append({**row, "golden_file": golden_file, "item_id": item_id})
            return split

        stats = dict(outcome.stats)
        telemetry = stats.pop("extra", {})
        return JudgeResult(judgments=by_golden_file(outcome.judgments), stats=JudgeStats(**stats),
                           telemetry=telemetry,
                           panel_judgments=by_golden_file(outcome.calls) if outcome.panel else [])

    def summarize(self, result: JudgeResult, summary: RunSummary, context: RunContext) -> None:
        summary.judge, summary.golden = context.judge, list(context.request.golden)
        summary.judge_stats = result.stats.model_copy(deep=True)
        if summary.judge_stats.scored == 0:
            summary.warnings.append(f"no item could be scored ({_unscored_reason(result)}): "
                                    f"0 of {summary.judge_stats.n} items, the win rate is –")
        for name, one in (summary.judge_stats.judges or {}).items():  # a panel judge that never gave a verdict
            judged = one.n - (one.identical_pairs or 0)  # identical answers are ties without a call
            if judged and one.scored - (one.identical_pairs or 0) == 0:
                summary.warnings.append(f"judge {name} gave no verdict on any of its {judged} items "
                                        f"({one.parse_failures} replies unreadable): the panel's verdicts are its "
                                        f"other judges' alone")
        _add_calibrations(summary, context)

    def store_rows(self, result: JudgeResult, record: RunRecord, context: RunContext) -> None:
        record.judgments = result.judgments
        record.panel_judgments = result.panel_judgments
        for name, value in result.telemetry.items():
            numeric = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            record.metrics.append(("judge", name, numeric, None if numeric is not None else {"value": value}))


def _unscored_reason(result: JudgeResult) -> str:
    stats, telemetry = result.stats, result.telemetry
    if telemetry.get("not_judged_items") == stats.n:
        return "every item has a failed generation"
    if stats.parse_failures:
        return f"{stats.parse_failures} judge replies could not be read"
    if telemetry.get("api_errors"):
        return f"{telemetry['api_errors']} judge calls failed"
    return "no item got a verdict in both orders"


def _add_calibrations(summary: RunSummary, context: RunContext) -> None:
    """Each judge's latest calibration against human labels with this run's protocol (evalhub judge calibrate),
    where the store holds one; the gate's --min-judge-human-agreement reads it."""
    stats = summary.judge_stats
    if stats is None or stats.protocol is None or context.db is None:
        return
    from evalhub.store import latest_calibrations

    judges = list(stats.judges) if stats.judges else [summary.judge]
    base_url = context.request.judge_options.base_url
    found = latest_calibrations([(j, base_url, stats.protocol.hash) for j in judges if j], context.db)
    if found:
        stats.calibration = {j: JudgeCalibration(**{k: c.get(k) for k in JudgeCalibration.model_fields})
                             for j, c in found.items()}
