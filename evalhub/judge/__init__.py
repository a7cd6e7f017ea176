"""Blind pairwise judging of a tuned model's answers against its base's, on a golden set.

    outcome = judge_pairs(items, base=answers_by_id, tuned=answers_by_id, judge="openai:gpt-4.1",
                          options=JudgeOptions(canaries=5), golden_file="golden_sets/x.jsonl")
    outcome.judgments  # one row per judge call, keyed like the store's `judgments` table
    outcome.stats      # win rate with CIs, sign test, position consistency, LC win rate, canaries, cost

Every item is judged in both orders (tuned answer as "Answer A", then as "Answer B"); an item counts only
when both orders gave a verdict, and orders that disagree make a tie. An item whose two answers are the same
text (whitespace aside) is a tie without a judge call (`identical_pairs`), as AlpacaEval settles them.

`judge` may be a list: a panel. Each judge judges every pair in both orders and gets its own statistics
(`stats["judges"]`); per item the panel's verdict is the verdict more than half of the judges gave, else a
tie, and a judge without a verdict still counts in that denominator. The pooled counts are the panel's, and
`stats["judge_agreement"]` says how far the judges agree (Cohen's kappa for two, Fleiss' for more). What the
judge is shown and how its reply is read is a protocol file (`options.protocol`, _protocol_file.py).

Judges (a registry by prefix, _registry.py; each provider imported only when chosen):
- "openai:MODEL" through the openai SDK (OPENAI_API_KEY; `base_url` for any OpenAI-compatible server);
- "anthropic:MODEL" through the anthropic SDK (ANTHROPIC_API_KEY; `base_url` for an Anthropic-compatible one);
- "vllm:PATH", an open judge model run in-process by vLLM, its replies constrained to the verdict's schema;
- "rm:PATH", a reward model from `evalhub train rm` that scores each answer alone (the higher reward wins);
- "reference", an offline deterministic judge by chrF similarity to the item's ideal answer beyond what every
  ideal answer shares.
The LLM judges share one wrapper (_wrapper.py) for the cache, the budget, re-asks, retries of unreadable
replies, time limits and key redaction; a provider only sends a conversation and says what its errors mean.

Stopping: a missing key, a bad judge name or bad options raise UserError before any call. A run that would
pass `max_cost`, whose endpoint refuses the request or the credentials (400/401/403/404), or whose judge is
gone, never answers, or fails several calls in a row, lets the calls in flight finish, caches their replies,
and then raises UserError: nothing is returned half-judged, and a re-run resumes from the cache without
paying twice.
"""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from evalhub.errors import UserError, first_repeat
from evalhub.judge._protocol import CallOutcome, PairRequest
from evalhub.judge._options import JudgeOptions
from evalhub.judge._protocol_file import load_protocol, shipped_protocols
from evalhub.judge._registry import Judge, make_judge
from evalhub.records import GoldenItem, Generation

__all__ = ["JudgeOptions", "judge_options", "JudgeOutcome", "Judge", "judge_pairs", "check_judge", "CANARY_NON_ANSWER", "panel_name",
           "load_protocol", "shipped_protocols", "same_answer"]

# The constant non-answer canaries pit against the ideal answer: any working judge prefers the ideal.
CANARY_NON_ANSWER = "I'm sorry, I don't know."


def judge_options(settings, **more: Any) -> JudgeOptions:
    """JudgeOptions from a request's JudgeSettings (evalhub.contracts): only the fields given there override
    the defaults above; `more` sets options no flag reaches (a calibration's seed, say)."""
    return JudgeOptions(**settings.model_dump(exclude_none=True, exclude_defaults=True), **more)


@dataclass
class JudgeOutcome:
    """`judgments`: the rows of the store's `judgments` table: every call of a single judge, or for a panel the
    panel's verdict per item and order (judge = the panel's name). `calls`: every judge's call rows (for a
    single judge, the same rows). `stats`: the pooled statistics, with each judge's under "judges"."""

    judgments: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)

    @property
    def panel(self) -> bool:
        return self.stats.get("judges") is not None


@dataclass(frozen=True)
class _PlannedCall:
    item_id: str
    tuned_position: str   # 'A' or 'B'
    is_canary: bool
    request: PairRequest


def judge_pairs(items: Sequence[GoldenItem], base: Mapping[str, Generation], tuned: Mapping[str, Generation],
                judge: str | Sequence[str], options: JudgeOptions = JudgeOptions(),
                golden_file: str = "") -> JudgeOutcome:
    """Judge every item's tuned answer against its base answer, blind and in both orders, by one judge or a
    panel (a list of judges).

    Items whose base or tuned generation failed are not judged and count as unscored. Canary rows carry
    item_id "canary:<item id>" and is_canary=True, and never enter the win rate.
    """
    judges = _judge_list(judge)
    _check_inputs(items, base, tuned, options)
    protocol = load_protocol(options.protocol)
    references = [item.output for item in items]
    backends: dict[str, Judge] = {}
    try:
        for name in judges:
            backends[name] = make_judge(name, options, references)
        judged = [i for i in items if _usable(base[i.id]) and _usable(tuned[i.id])]
        identical = {i.id for i in judged if same_answer(base[i.id].output, tuned[i.id].output)}
        planned = _plan([i for i in judged if i.id not in identical], judged, base, tuned, options)
        outcomes = _run_to_completion(_run(list(backends.values()), planned, options))
    finally:
        for backend in backends.values():
            backend.close()
    for backend in backends.values():
        if backend.stop_reason is not None:
            raise backend.stop_reason

    calls: list[dict] = []
    per_judge: dict[str, dict] = {}
    item_verdicts: dict[str, dict[str, str | None]] = {}
    for name, backend, judge_outcomes in zip(judges, backends.values(), outcomes):
        rows = [_row(call, outcome, name, golden_file) for call, outcome in zip(planned, judge_outcomes)]
        rows += [_identical_row(item_id, position, name, golden_file) for item_id in sorted(identical) for position in "AB"]
        calls += rows
        per_judge[name], item_verdicts[name] = _judge_stats(rows, items, base, tuned, identical, backend, options)
        per_judge[name]["identical_pairs"] = len(identical)
    extra_common = {"not_judged_items": len(items) - len(judged), "canaries": options.canaries,
                    "use_reference": options.use_reference, "template_hash": protocol.hash,
                    "protocol": protocol.name}
    if len(judges) == 1:
        stats = per_judge[judges[0]]
        stats["extra"].update(extra_common)
        stats.update({"protocol": protocol.describe(), "judges": None, "judge_agreement": None})
        return JudgeOutcome(judgments=calls, stats=stats, calls=calls)

    stats = _panel_stats(judges, per_judge, item_verdicts, calls, items, base, tuned, identical, options)
    stats["identical_pairs"] = len(identical)
    stats["extra"].update(extra_common)
    stats["protocol"] = protocol.describe()
    for judge_stats in per_judge.values():
        judge_stats.pop("extra", None)
    stats["judges"] = per_judge
    from evalhub.stats.agreement import panel_agreement

    # Identical pairs are ties every judge "agrees" on without being asked: they would inflate agreement.
    stats["judge_agreement"] = panel_agreement({name: {i: v for i, v in verdicts.items() if i not in identical}
                                                for name, verdicts in item_verdicts.items()})
    return JudgeOutcome(judgments=_panel_rows(judges, calls, golden_file), stats=stats, calls=calls)


def panel_name(judges: Sequence[str]) -> str:
    """How a panel is named in the store and the reports: its judges joined by ' + '."""
    return " + ".join(judges)


def same_answer(first: str | None, second: str | None) -> bool:
    """Two answers that are the same text once runs of whitespace are made one space and the ends trimmed."""
    return first is not None and second is not None and " ".join(first.split()) == " ".join(second.split())


def _judge_list(judge: str | Sequence[str]) -> list[str]:
    judges = [judge] if isinstance(judge, str) else list(judge)
    if not judges:
        raise UserError("no judge given; pass --judge openai:MODEL (repeat --judge for a panel) or --judge reference")
    if (name := first_repeat(judges)) is not None:
        raise UserError(f"--judge {name} is given twice; name each judge of a panel once")
    return judges


def _judge_stats(rows: list[dict], items, base, tuned, identical: set[str], backend: Judge,
                 options: JudgeOptions) -> tuple[dict, dict]:
    """One judge's statistics (today's judge_stats keys, the style-controlled win rate and the breakdown by
    tag) and its verdict per item (None when unscored)."""
    from evalhub.stats.pairwise import ItemVerdicts, canary_accuracy, combine_orders, pairwise_stats

    tuned_side = {(r["item_id"], r["tuned_position"]): r["verdict"] for r in rows if not r["is_canary"]}
    item_rows = [ItemVerdicts(i.id, tuned_side.get((i.id, "A")), tuned_side.get((i.id, "B")),
                              len(tuned[i.id].output or ""), len(base[i.id].output or ""),
                              tuned[i.id].output or "", base[i.id].output or "", tuple(i.tags), i.id in identical,
                              i.cluster)
                 for i in items]
    stats = pairwise_stats(item_rows, seed=options.seed, resamples=options.bootstrap_resamples)
    regular = [r for r in rows if not r["is_canary"]]
    canary_rows = [r for r in rows if r["is_canary"] and r["status"] != "api_error"]
    parse_failures = sum(r["status"] == "parse_fail" for r in regular)
    costs = [r["cost_usd"] for r in rows]
    extra = {
        "wilson_ci": stats["wilson_ci"],
        "length_correlation": stats["length_correlation"],
        "parse_failure_rate": parse_failures / (2 * len(items)) if items else None,
        "api_errors": sum(r["status"] == "api_error" for r in regular),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "cached_replies_used": backend.cache_hits,
        "canary_parse_failures": sum(r["status"] == "parse_fail" for r in canary_rows),
        "structured_output": backend.structured,
    }
    summary = {key: stats[key] for key in ("n", "wins", "losses", "ties", "scored", "unscored", "win_rate",
                                           "win_rate_ci", "p_value", "mde", "clusters")}
    summary.update({
        "parse_failures": parse_failures,
        "position_consistency": stats["position_consistency"],
        "inconsistent": stats["inconsistent"],
        "lc_win_rate": stats["lc_win_rate"],
        "sc_win_rate": stats["sc_win_rate"],
        "canary_accuracy": canary_accuracy([r["verdict"] for r in canary_rows]) if options.canaries else None,
        "judge_calls": backend.calls,
        "cost_usd": None if any(c is None for c in costs) else float(sum(costs)),
        "by_tag": stats["by_tag"],
        "extra": extra,
    })
    verdicts = {i.item_id: combine_orders(i.tuned_first, i.tuned_second) for i in item_rows}
    return summary, verdicts


def _panel_stats(judges, per_judge: dict, item_verdicts: dict, calls: list[dict], items, base, tuned,
                 identical: set[str], options: JudgeOptions) -> dict:
    """The panel's pooled statistics: counts, rates and breakdowns of the majority verdicts; position
    consistency, parse failures, calls and cost over every judge."""
    from evalhub.stats.pairwise import (ItemOutcome, ItemVerdicts, canary_accuracy, inconsistent_items, outcome_stats,
                                        panel_verdict, position_consistency)

    outcomes = [ItemOutcome(i.id, panel_verdict([item_verdicts[j][i.id] for j in judges]),
                            len(tuned[i.id].output or ""), len(base[i.id].output or ""),
                            tuned[i.id].output or "", base[i.id].output or "", tuple(i.tags), i.cluster)
                for i in items]
    stats = outcome_stats(outcomes, seed=options.seed, resamples=options.bootstrap_resamples)
    sides: dict[tuple[str, str, str], str | None] = {(r["judge"], r["item_id"], r["tuned_position"]): r["verdict"]
                                                     for r in calls if not r["is_canary"]}
    orders = [ItemVerdicts(i.id, sides.get((j, i.id, "A")), sides.get((j, i.id, "B")), 0, 0, identical=i.id in identical)
              for j in judges for i in items]
    regular = [r for r in calls if not r["is_canary"]]
    canary_rows = [r for r in calls if r["is_canary"] and r["status"] != "api_error"]
    costs = [s["cost_usd"] for s in per_judge.values()]
    parse_failures = sum(s["parse_failures"] for s in per_judge.values())
    summary = {key: stats[key] for key in ("n", "wins", "losses", "ties", "scored", "unscored", "win_rate",
                                           "win_rate_ci", "p_value", "mde", "clusters")}
    summary.update({
        "parse_failures": parse_failures,
        "position_consistency": position_consistency(orders),
        "inconsistent": inconsistent_items(orders),  # judge-items: each judge's items whose orders disagree
        "lc_win_rate": stats["lc_win_rate"],
        "sc_win_rate": stats["sc_win_rate"],
        "canary_accuracy": canary_accuracy([r["verdict"] for r in canary_rows]) if options.canaries else None,
        "judge_calls": sum(s["judge_calls"] for s in per_judge.values()),
        "cost_usd": None if any(c is None for c in costs) else float(sum(costs)),
        "by_tag": stats["by_tag"],
        "extra": {
            "wilson_ci": stats["wilson_ci"],
            "length_correlation": stats["length_correlation"],
            "parse_failure_rate": parse_failures / (2 * len(items) * len(judges)) if items else None,
            "api_errors": sum(r["status"] == "api_error" for r in regular),
            "prompt_tokens": sum(r["prompt_tokens"] for r in calls),
            "completion_tokens": sum(r["completion_tokens"] for r in calls),
            "cached_replies_used": sum(s["extra"]["cached_replies_used"] for s in per_judge.values()),
            "canary_parse_failures": sum(r["status"] == "parse_fail" for r in canary_rows),
            "structured_output": all(s["extra"]["structured_output"] for s in per_judge.values()),
            "panel_size": len(judges),
        },
    })
    return summary


def _panel_rows(judges: Sequence[str], calls: list[dict], golden_file: str) -> list[dict]:
    """The panel's verdict per item and order, as rows of the `judgments` table (judge = the panel's name):
    both orders of an item carry the panel's item verdict, so any reader that folds two orders gets it; a
    canary call's row carries the majority of the judges' verdicts on that call. Tokens and cost are the
    judges' summed; the raw reply lists what each judge said."""
    from evalhub.stats.pairwise import combine_orders, panel_verdict

    by_call: dict[tuple[str, str], dict[str, dict]] = {}
    for row in calls:
        by_call.setdefault((row["item_id"], row["tuned_position"]), {})[row["judge"]] = row

    def said(row: dict | None) -> str:
        if row is None:
            return "not asked"
        return row["verdict"] if row["status"] == "ok" else row["status"].replace("_", " ")

    rows = []
    name = panel_name(judges)
    for (item_id, position), by_judge in by_call.items():
        first = next(iter(by_judge.values()))
        if first["is_canary"]:
            verdict = panel_verdict([(by_judge.get(j) or {}).get("verdict") for j in judges])
        else:
            verdict = panel_verdict([combine_orders((by_call.get((item_id, "A"), {}).get(j) or {}).get("verdict"),
                                                    (by_call.get((item_id, "B"), {}).get(j) or {}).get("verdict"))
                                     for j in judges])
        costs = [r["cost_usd"] for r in by_judge.values()]
        rows.append({
            "golden_file": golden_file, "item_id": item_id, "tuned_position": position, "judge": name,
            "raw_reply": " · ".join(f"{j}: {said(by_judge.get(j))}" for j in judges),
            "status": "ok" if verdict is not None else "no_verdict", "verdict": verdict,
            "reason": f"panel of {len(judges)}: " + ", ".join(
                f"{said(by_judge.get(j))}" for j in judges) + ("" if first["is_canary"] else " (this order)"),
            "prompt_tokens": sum(r["prompt_tokens"] for r in by_judge.values()),
            "completion_tokens": sum(r["completion_tokens"] for r in by_judge.values()),
            "cost_usd": None if any(c is None for c in costs) else float(sum(costs)),
            "is_canary": first["is_canary"], "weight": 1,
        })
    return rows


# ---------------------------------------------------------------- checks, before anything is spent

def _check_inputs(items, base, tuned, options: JudgeOptions) -> None:
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise UserError("duplicate item ids in the golden set; ids must be unique (evalhub golden validate FILE)")
    for role, answers in (("base", base), ("tuned", tuned)):
        missing = [i for i in ids if i not in answers]
        if missing:
            raise UserError(f"no {role} answer for item(s) {missing[:5]}; generate answers for every golden item")
    if options.canaries < 0 or options.canaries > len(items):
        raise UserError(f"--canaries must be between 0 and the golden set's {len(items)} items")
    _check_options(options)


def _check_options(options: JudgeOptions) -> None:
    if options.concurrency < 1:
        raise UserError("judge concurrency must be at least 1")
    if options.max_cost is not None and options.max_cost <= 0:
        raise UserError("--max-cost must be a positive number of USD")
    if options.reasks < 0 or options.max_retries < 0:
        raise UserError("reasks and max_retries must be 0 or more")
    if not options.timeout > 0:
        raise UserError(f"--judge-timeout must be a positive number of seconds, not {options.timeout:g}")
    if not options.max_retry_seconds >= 0:
        raise UserError(f"--judge-max-retry-seconds must be 0 or more seconds, not {options.max_retry_seconds:g}")
    if not options.retry_backoff >= 0:
        raise UserError("retry_backoff must be 0 or more seconds")
    if options.max_completion_tokens is not None and options.max_completion_tokens < 1:
        raise UserError("max_completion_tokens must be at least 1")


def _usable(generation: Generation) -> bool:
    return generation.status == "ok" and generation.output is not None


def check_judge(judge: str, options: JudgeOptions = JudgeOptions()) -> None:
    """Raise UserError now if `judge` cannot work: a bad name or options, no key, an unreachable server, a
    refused key or a server that does not answer. `evalhub compare` calls it before generating anything, so
    a judge problem costs nothing. A vllm: judge is not loaded here: only its model folder is checked."""
    _check_options(options)
    backend = make_judge(judge, options, [])

    async def check() -> None:
        try:
            await backend.check_reachable([], force=True)
        finally:
            await backend.aclose()

    try:
        _run_to_completion(check())
    finally:
        backend.close()


# ---------------------------------------------------------------- the calls

def _plan(items: Sequence[GoldenItem], canary_pool: Sequence[GoldenItem], base, tuned,
          options: JudgeOptions) -> list[_PlannedCall]:
    """Both orders of every item, then both orders of each canary (drawn from `canary_pool`)."""
    calls = []

    def both_orders(item_id: str, item: GoldenItem, tuned_text: str, base_text: str, is_canary: bool) -> None:
        reference = item.output if options.use_reference else None
        calls.append(_PlannedCall(item_id, "A", is_canary, PairRequest(item.prompt, reference, tuned_text, base_text)))
        calls.append(_PlannedCall(item_id, "B", is_canary, PairRequest(item.prompt, reference, base_text, tuned_text)))

    for item in items:
        both_orders(item.id, item, tuned[item.id].output, base[item.id].output, False)
    for item in random.Random(options.seed).sample(list(canary_pool), min(options.canaries, len(canary_pool))):
        both_orders(f"canary:{item.id}", item, item.output, CANARY_NON_ANSWER, True)
    return calls


def _run_to_completion(coroutine):
    """asyncio.run, or in a worker thread when the caller already runs an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


async def _run(backends: Sequence[Judge], planned: list[_PlannedCall], options: JudgeOptions) -> list[list[CallOutcome]]:
    """Every judge's calls, all judges at once, each with at most `concurrency` in flight (all of them for a
    judge that batches); per judge, results in the planned order."""
    from tqdm import tqdm

    bar = tqdm(total=len(planned) * len(backends), desc="judge", unit="call", file=sys.stderr,
               disable=None if options.progress else True)

    async def one(backend: Judge, limit: asyncio.Semaphore, call: _PlannedCall) -> CallOutcome:
        async with limit:
            outcome = await backend.judge_pair(call.request)
        bar.update(1)
        return outcome

    async def all_of(backend: Judge) -> list[CallOutcome]:
        limit = asyncio.Semaphore(backend.in_flight(options.concurrency) or max(len(planned), 1))
        return list(await asyncio.gather(*(one(backend, limit, call) for call in planned)))

    try:
        for backend in backends:
            await backend.check_reachable([call.request for call in planned])
        return list(await asyncio.gather(*(all_of(backend) for backend in backends)))
    finally:
        bar.close()
        for backend in backends:
            await backend.aclose()


def _row(call: _PlannedCall, outcome: CallOutcome, judge: str, golden_file: str) -> dict:
    """One `judgments` row; the verdict is turned from a position ('A'/'B') into the tuned model's side."""
    verdict = None
    if outcome.status == "ok":
        verdict = "tie" if outcome.label == "tie" else ("win" if outcome.label == call.tuned_position else "loss")
    return {
        "golden_file": golden_file,
        "item_id": call.item_id,
        "tuned_position": call.tuned_position,
        "judge": judge,
        "raw_reply": outcome.raw_reply,
        "status": outcome.status,
        "verdict": verdict,
        "reason": outcome.reason,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "is_canary": call.is_canary,
        "weight": outcome.weight if verdict is not None else None,
    }


def _identical_row(item_id: str, position: str, judge: str, golden_file: str) -> dict:
    """An item whose two answers are the same text: a tie, settled without asking the judge."""
    return {"golden_file": golden_file, "item_id": item_id, "tuned_position": position, "judge": judge,
            "raw_reply": None, "status": "ok", "verdict": "tie",
            "reason": "identical answers: a tie without a judge call", "prompt_tokens": 0, "completion_tokens": 0,
            "cost_usd": 0.0, "is_canary": False, "weight": 1}
