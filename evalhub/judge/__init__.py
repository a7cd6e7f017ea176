"""Blind pairwise judging of a tuned model's answers against its base's, on a golden set.

    outcome = judge_pairs(items, base=answers_by_id, tuned=answers_by_id, judge="openai:gpt-4.1",
                          options=JudgeOptions(canaries=5), golden_file="golden_sets/x.jsonl")
    outcome.judgments  # one row per judge call, keyed like the store's `judgments` table
    outcome.stats      # win rate with CIs, sign test, position consistency, LC win rate, canaries, cost

Every item is judged in both orders (tuned answer as "Answer A", then as "Answer B"); an item counts only
when both orders gave a verdict, and orders that disagree make a tie.

Judges (a registry by prefix, _registry.py; each provider imported only when chosen):
- "openai:MODEL" through the openai SDK (OPENAI_API_KEY; `base_url` for any OpenAI-compatible server);
- "anthropic:MODEL" through the anthropic SDK (ANTHROPIC_API_KEY; `base_url` for an Anthropic-compatible one);
- "vllm:PATH", an open judge model run in-process by vLLM, its replies constrained to the verdict's schema;
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

from evalhub.errors import UserError
from evalhub.judge._protocol import TEMPLATE_HASH, CallOutcome, PairRequest
from evalhub.judge._registry import Judge, make_judge
from evalhub.records import GoldenItem, Generation

__all__ = ["JudgeOptions", "JudgeOutcome", "Judge", "judge_pairs", "check_judge", "CANARY_NON_ANSWER"]

# The constant non-answer canaries pit against the ideal answer: any working judge prefers the ideal.
CANARY_NON_ANSWER = "I'm sorry, I don't know."


@dataclass(frozen=True)
class JudgeOptions:
    """How to judge. Defaults suit OpenAI's and Anthropic's rate limits and a GPT-4-class judge."""

    # An OpenAI-compatible server (e.g. vLLM's) for openai:, an Anthropic-compatible one for anthropic:; None: the
    # provider's own API (or $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL).
    base_url: str | None = None
    # Judge calls in flight at once. With GPT-4-class latencies (1-3 s a call) 32 is roughly 10-30 calls a
    # second, within OpenAI's per-minute request limits from tier 2 up; a lower tier's 429s are retried after
    # their Retry-After. A loopback judge answering in 100 ms does 400 calls in about 1.5-3 s (bench/).
    concurrency: int = 32
    max_cost: float | None = None        # USD; the run stops (UserError) before a call could pass it
    use_reference: bool = True           # show the judge the ideal answer
    canaries: int = 0                    # extra ideal-vs-non-answer pairs, reported apart
    seed: int = 0                        # judge sampling seed, canary choice, bootstrap
    cache_path: str | None = None        # None: $EVALHUB_CACHE/judge/replies.jsonl or ~/.cache/evalhub/judge/...
    timeout: float = 60.0                # seconds per HTTP request
    max_retries: int = 6                 # per call, on 429 / 5xx / 529 / timeouts / HTTP-200 error bodies (~25 s of backoff)
    # The most seconds one call may spend after its first attempt (waits and further attempts): it bounds a
    # judge that keeps asking to wait (Retry-After) or answers too slowly; past it the run stops.
    max_retry_seconds: float = 120.0
    retry_backoff: float = 0.5           # first wait between retries in seconds, doubling up to 8 s (Retry-After wins)
    prices: Mapping[str, Sequence[float]] | None = None  # model -> (input, output) USD per million tokens
    reasks: int = 1                      # re-asks of a reply that could not be read
    max_completion_tokens: int = 300     # the verdict and a short reason
    structured_output: bool = True       # openai: send response_format (json_schema); turned off if the endpoint refuses it
    vllm_args: Mapping[str, Any] | None = None  # vllm: judge: extra vllm.LLM arguments (tensor_parallel_size, max_model_len, ...)
    bootstrap_resamples: int = 2000
    progress: bool = True                # a progress bar on stderr (when it is a terminal)


@dataclass
class JudgeOutcome:
    judgments: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _PlannedCall:
    item_id: str
    tuned_position: str   # 'A' or 'B'
    is_canary: bool
    request: PairRequest


def judge_pairs(items: Sequence[GoldenItem], base: Mapping[str, Generation], tuned: Mapping[str, Generation],
                judge: str, options: JudgeOptions = JudgeOptions(), golden_file: str = "") -> JudgeOutcome:
    """Judge every item's tuned answer against its base answer, blind and in both orders.

    Items whose base or tuned generation failed are not judged and count as unscored. Canary rows carry
    item_id "canary:<item id>" and is_canary=True, and never enter the win rate.
    """
    from evalhub.stats.pairwise import ItemVerdicts, canary_accuracy, pairwise_stats

    _check_inputs(items, base, tuned, options)
    backend = make_judge(judge, options, [item.output for item in items])
    judged = [i for i in items if _usable(base[i.id]) and _usable(tuned[i.id])]
    planned = _plan(judged, base, tuned, options)
    try:
        outcomes = _run_to_completion(_run(backend, planned, options))
    finally:
        backend.close()
    if backend.stop_reason is not None:
        raise backend.stop_reason

    judgments = [_row(call, outcome, judge, golden_file) for call, outcome in zip(planned, outcomes)]
    tuned_side = {(r["item_id"], r["tuned_position"]): r["verdict"] for r in judgments if not r["is_canary"]}
    stats = pairwise_stats(
        [ItemVerdicts(i.id, tuned_side.get((i.id, "A")), tuned_side.get((i.id, "B")),
                      len(tuned[i.id].output or ""), len(base[i.id].output or "")) for i in items],
        seed=options.seed, resamples=options.bootstrap_resamples)
    regular = [r for r in judgments if not r["is_canary"]]
    canary_rows = [r for r in judgments if r["is_canary"] and r["status"] != "api_error"]
    parse_failures = sum(r["status"] == "parse_fail" for r in regular)
    costs = [r["cost_usd"] for r in judgments]
    extra = {
        "wilson_ci": stats["wilson_ci"],
        "length_correlation": stats["length_correlation"],
        "parse_failure_rate": parse_failures / (2 * len(items)) if items else None,
        "api_errors": sum(r["status"] == "api_error" for r in regular),
        "not_judged_items": len(items) - len(judged),
        "prompt_tokens": sum(r["prompt_tokens"] for r in judgments),
        "completion_tokens": sum(r["completion_tokens"] for r in judgments),
        "cached_replies_used": backend.cache_hits,
        "canaries": options.canaries,
        "canary_parse_failures": sum(r["status"] == "parse_fail" for r in canary_rows),
        "use_reference": options.use_reference,
        "structured_output": backend.structured,
        "template_hash": TEMPLATE_HASH,
    }
    summary = {key: stats[key] for key in ("n", "wins", "losses", "ties", "scored", "unscored", "win_rate",
                                           "win_rate_ci", "p_value")}
    summary.update({
        "parse_failures": parse_failures,
        "position_consistency": stats["position_consistency"],
        "lc_win_rate": stats["lc_win_rate"],
        "canary_accuracy": canary_accuracy([r["verdict"] for r in canary_rows]) if options.canaries else None,
        "judge_calls": backend.calls,
        "cost_usd": None if any(c is None for c in costs) else float(sum(costs)),
        "extra": extra,
    })
    return JudgeOutcome(judgments=judgments, stats=summary)


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
    if options.max_completion_tokens < 1:
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

def _plan(items: Sequence[GoldenItem], base, tuned, options: JudgeOptions) -> list[_PlannedCall]:
    """Both orders of every item, then both orders of each canary."""
    calls = []

    def both_orders(item_id: str, item: GoldenItem, tuned_text: str, base_text: str, is_canary: bool) -> None:
        reference = item.output if options.use_reference else None
        calls.append(_PlannedCall(item_id, "A", is_canary, PairRequest(item.prompt, reference, tuned_text, base_text)))
        calls.append(_PlannedCall(item_id, "B", is_canary, PairRequest(item.prompt, reference, base_text, tuned_text)))

    for item in items:
        both_orders(item.id, item, tuned[item.id].output, base[item.id].output, False)
    for item in random.Random(options.seed).sample(list(items), min(options.canaries, len(items))):
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


async def _run(backend: Judge, planned: list[_PlannedCall], options: JudgeOptions) -> list[CallOutcome]:
    """All calls, at most `concurrency` in flight (all of them for a judge that batches); results in the
    planned order."""
    from tqdm import tqdm

    limit = asyncio.Semaphore(backend.in_flight(options.concurrency) or max(len(planned), 1))
    bar = tqdm(total=len(planned), desc="judge", unit="call", file=sys.stderr,
               disable=None if options.progress else True)

    async def one(call: _PlannedCall) -> CallOutcome:
        async with limit:
            outcome = await backend.judge_pair(call.request)
        bar.update(1)
        return outcome

    try:
        await backend.check_reachable([call.request for call in planned])
        return list(await asyncio.gather(*(one(call) for call in planned)))
    finally:
        bar.close()
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
    }
