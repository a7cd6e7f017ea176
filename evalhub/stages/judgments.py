"""The judge stage: every item's two answers judged blind in both orders, by one judge or a panel; its part
of the summary is `judge_stats` (with each judge's latest calibration against human labels), its rows the
judge calls, a panel's per-judge calls and the judge's telemetry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from evalhub.contracts import JudgeCalibration, JudgeStats, RunSummary, SequentialInfo
from evalhub.errors import UserError
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
        options = judge_options(request.judge_options)

        def judge(items, options=options):
            return judge_pairs(items=items, judge=list(request.judges) or context.judge, options=options,
                               golden_file="", base=generations.answers["base"], tuned=generations.answers["tuned"])

        sequential = None
        if request.sequential:
            outcome, sequential = judge_sequentially(context, judge, options)
        else:
            outcome = judge(context.items)

        def by_golden_file(rows: list[dict]) -> list[dict]:
            split = []
            for row in rows:
                golden_file, item_id = context.golden_file_and_id(row["item_id"])
                split.append({**row, "golden_file": golden_file, "item_id": item_id})
            return split

        stats = dict(outcome.stats)
        telemetry = stats.pop("extra", {})
        stats["sequential"] = sequential
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


def judge_sequentially(context: RunContext, judge, options) -> tuple[Any, SequentialInfo]:
    """`--sequential`: judge the items in a seeded random order, a batch at a time, and stop once an
    anytime-valid confidence sequence on the win rate (evalhub/stats/sequential.py) decides every win-rate
    threshold of the gate, or when every item is judged. Each look judges the whole prefix again, which the
    judge's cache answers for every item judged before, so a resumed run continues the same order for free.
    The statistics are those of the items judged; the judge's calls and cost are summed over the looks."""
    import random
    from dataclasses import replace

    from evalhub.stats.pairwise import SCORE, combine_orders
    from evalhub.stats.sequential import confidence_sequence, decided

    request = context.request
    if any(item.cluster for item in context.items):
        raise UserError("--sequential treats items as independent, but this golden set has clusters; judge every "
                        "item (drop --sequential) so the intervals resample whole clusters")
    order = list(context.items)
    random.Random(options.seed).shuffle(order)
    thresholds = request.thresholds.win_rate_thresholds()
    batch, calls, spent = request.sequential_batch, 0, 0.0
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    for end in range(batch, len(order) + batch, batch):
        prefix = order[:end]
        budget = None if options.max_cost is None else max(options.max_cost - spent, 0.0)
        outcome = judge(prefix, replace(options, max_cost=budget))
        # Cached turns are neither sent nor billed: calls, tokens and cost of each look are its new ones.
        calls += outcome.stats["judge_calls"]
        spent += outcome.stats.get("cost_usd") or 0.0
        for key in tokens:
            tokens[key] += outcome.stats.get("extra", {}).get(key, 0)
        verdicts: dict[str, dict[str, str | None]] = {}
        for row in outcome.judgments:
            if not row["is_canary"]:
                verdicts.setdefault(row["item_id"], {})[row["tuned_position"]] = row["verdict"]
        folded = [combine_orders(verdicts.get(i.id, {}).get("A"), verdicts.get(i.id, {}).get("B")) for i in prefix]
        interval = confidence_sequence([SCORE[v] for v in folded if v is not None])
        if decided(interval, thresholds) or end >= len(order):
            break
    context.say(f"sequential: judged {len(prefix)} of {len(order)} items; anytime-valid win-rate interval "
                f"[{interval.lower:.3f}, {interval.upper:.3f}]")
    extra = outcome.stats.get("extra", {})
    if "cached_replies_used" in extra:  # replies this run asked at an earlier look are not from an earlier run
        extra["cached_replies_used"] = max(0, extra["cached_replies_used"] - (calls - outcome.stats["judge_calls"]))
    extra.update(tokens)
    outcome.stats["judge_calls"] = calls
    if outcome.stats.get("cost_usd") is not None:
        outcome.stats["cost_usd"] = spent
    info = SequentialInfo(stopped_early=len(prefix) < len(order), items_judged=len(prefix), items_total=len(order),
                          interval=(interval.lower, interval.upper), batch=batch, seed=options.seed)
    return outcome, info


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
