"""The wrapper every LLM judge runs through, whatever its provider.

A provider (see _provider.py) only sends one conversation and classifies its errors. Around it this module
does, the same way for OpenAI, Anthropic, vLLM or any provider added later:

- the cache: every successful reply is stored before it is parsed, and a cached turn is never asked again;
- the budget: a call that could pass `max_cost` is not started, and the run stops cleanly;
- re-asks: an unreadable reply is re-asked (`reasks` times) in the same conversation;
- retries of replies that are not replies (HTTP 200 with an error body, broken JSON), on the SDK's schedule;
- a time limit per call over HTTP: `timeout` for each request, and `max_retry_seconds` for its retries;
- stopping: credentials refused, a request every call would get wrong, a judge that is gone or never
  answers, or calls failing one after another, stop the run with one line naming the fix, while the calls
  in flight finish and are cached;
- redaction: the provider's key (and anything shaped like one) is scrubbed from replies and messages.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re

from evalhub.errors import UserError
from evalhub.judge._cache import ReplyCache, cache_key
from evalhub.judge._cost import Budget
from evalhub.judge._protocol import PAIRWISE, CallOutcome, PairRequest, build_messages, new_marker, parse_verdict
from evalhub.judge._protocol_file import Protocol
from evalhub.judge._provider import (FAILED, INVALID, REFUSED, REJECTED, TIMEOUT, UNREACHABLE, UNSTRUCTURED,
                                     Completion, Fault, Provider, Unreadable, start_counting)

log = logging.getLogger(__name__)

# OpenAI keys (sk-..., sk-proj-...) and Anthropic keys (sk-ant-api03-...) alike.
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")
# Calls failing one after another, each after all its retries: the judge is down, not flaky, and asking the
# rest would only spend every call's retries before the same end.
FAILED_IN_A_ROW_STOP = 3
MAX_BACKOFF_S = 8.0  # the SDKs' own ceiling between retries


class ProviderJudge:
    """A provider behind the cache, the budget and the rules above: one per run, shared by all its calls."""

    def __init__(self, provider: Provider, cache: ReplyCache, budget: Budget, *, reasks: int, max_retries: int,
                 timeout: float, max_retry_seconds: float, retry_backoff: float, protocol: Protocol = PAIRWISE):
        self.provider = provider
        self.protocol = protocol  # the templates, the verdict scale and the parser; its hash keys the cache
        self.judge = provider.judge
        self.cache, self.budget = cache, budget
        self.reasks, self.max_retries = reasks, max_retries
        self.timeout, self.max_retry_seconds, self.retry_backoff = timeout, max_retry_seconds, retry_backoff
        self.cache_hits = 0     # replies taken from the cache instead of asked
        self.stop_reason: UserError | None = None  # set when the run must stop: no new call starts
        self._failed_in_a_row = 0

    # ------------------------------------------------------------ what judge_pairs reads

    @property
    def structured(self) -> bool:
        return self.provider.structured

    @property
    def calls(self) -> int:
        """Requests sent to the judge, retries included."""
        return self.provider.requests

    def in_flight(self, concurrency: int) -> int | None:
        """How many calls may run at once: all of them for a provider that batches them itself."""
        return None if self.provider.batched else concurrency

    # ------------------------------------------------------------ before the first call

    async def check_reachable(self, requests: list[PairRequest], force: bool = False) -> None:
        """Before any call the cache cannot answer: is the judge there, and does it take the key?

        The check is a free request, so an unreachable URL, a refused key or a judge that never answers stops
        the run in seconds, before anything is spent, instead of after every call has used up its retries. A
        fully cached re-run makes no request at all and so works offline.
        """
        if not force and all(self.cache.get(self._key(request, [])) is not None for request in requests):
            return
        attempts = start_counting()
        try:
            async with asyncio.timeout(self.timeout + self.max_retry_seconds):
                await self.provider.check()
        except TimeoutError:
            raise UserError(self._no_answer(self.timeout + self.max_retry_seconds, attempts,
                                            "--judge-max-retry-seconds")) from None
        except Exception as error:
            fault = self.provider.classify(error)
            if fault is None:
                raise
            if fault.kind == UNREACHABLE:
                raise UserError(f"cannot reach the judge at {self.provider.where} ({self.redact(fault.message)}); "
                                f"check --judge-base-url and that the server is up") from None
            if fault.kind == TIMEOUT:
                raise UserError(self._no_answer(self.timeout, attempts, "--judge-timeout")) from None
            if fault.kind == REFUSED:
                raise UserError(self.redact(fault.message)) from None
            # Anything else (a server without the endpoint the check uses): the calls themselves will tell.

    # ------------------------------------------------------------ one call

    async def judge_pair(self, request: PairRequest) -> CallOutcome:
        """Judge one ordered pair: cached turns are reused, the rest asked; re-ask while unreadable."""
        messages = build_messages(request, new_marker(request), self.protocol)
        earlier: list[str] = []
        billed = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0 if self.budget.price else None}
        for _turn in range(self.reasks + 1):
            key = self._key(request, earlier)
            cached = self.cache.get(key)
            if cached is not None:
                reply = cached["reply"]
                self.cache_hits += 1
            else:
                if self.stop_reason is not None:
                    return CallOutcome.skipped()
                prompt_bytes = sum(len(m["content"].encode("utf-8")) for m in messages)
                held = self.budget.reserve(prompt_bytes)
                if held is None:
                    self.stop_reason = UserError(
                        f"--max-cost {self.budget.max_cost:g} USD reached: {self.budget.spent:.4f} USD spent and the "
                        f"next call could pass the budget; every reply so far is cached, so re-run with a higher "
                        f"--max-cost to finish without paying twice")
                    return CallOutcome.skipped()
                try:
                    completion = await self._complete(messages)
                except _CallFailed as failure:
                    self.budget.release(held)
                    return CallOutcome(raw_reply=_joined(earlier) or None, status="api_error", label=None,
                                       reason=failure.message, **billed)
                reply = completion.text
                cost = self.budget.settle(held, prompt_bytes, completion.prompt_tokens, completion.completion_tokens)
                billed["prompt_tokens"] += completion.prompt_tokens
                billed["completion_tokens"] += completion.completion_tokens
                if billed["cost_usd"] is not None and cost is not None:
                    billed["cost_usd"] += cost
                # Stored before it is parsed: a reply paid for is never paid for again.
                self.cache.put(key, reply, completion.prompt_tokens, completion.completion_tokens)
            earlier.append(reply)
            verdict = parse_verdict(reply, self.protocol)
            if verdict.label is not None:
                return CallOutcome(raw_reply=_joined(earlier), status="ok", label=verdict.label,
                                   reason=verdict.reason, weight=verdict.weight, **billed)
            messages = [*messages, {"role": "assistant", "content": reply},
                        {"role": "user", "content": self.protocol.spec.reask}]
        return CallOutcome(raw_reply=_joined(earlier), status="parse_fail", label=None, reason=verdict.reason,
                           **billed)

    def _key(self, request: PairRequest, earlier: list[str]) -> str:
        return cache_key(self.judge, self.provider.endpoint, self.protocol.hash, request.prompt, request.reference,
                         request.answer_a, request.answer_b, self.provider.sampling, earlier)

    async def _complete(self, messages: list[dict]) -> Completion:
        """One reply (redacted), within the per-call time limit; or _CallFailed."""
        attempts = start_counting()
        # The first attempt, then at most max_retry_seconds more. None for a judge in this process (vllm:): its
        # calls wait for one batch of the whole turn, which takes as long as the batch does.
        limit = None if self.provider.batched else self.timeout + self.max_retry_seconds
        try:
            async with asyncio.timeout(limit):
                completion = await self._ask(messages, attempts)
        except TimeoutError:
            self._stop(f"the judge at {self.provider.where} gave no reply within {limit:g} s "
                       f"({_retries(attempts)}); check the server or raise --judge-max-retry-seconds")
        self._failed_in_a_row = 0
        return Completion(self.redact(completion.text), completion.prompt_tokens, completion.completion_tokens)

    async def _ask(self, messages: list[dict], attempts: list[int]) -> Completion:
        unreadable = 0
        while True:
            try:
                return await self.provider.complete(messages, self.provider.structured)
            except Unreadable as error:
                if unreadable >= self.max_retries:
                    self._failed(f"{self.redact(str(error))} (after {_retries(attempts)})")
                # The SDKs' schedule: doubling from retry_backoff, at most 8 s, minus up to 25 % jitter.
                await asyncio.sleep(min(self.retry_backoff * 2 ** unreadable, MAX_BACKOFF_S) * (1 - 0.25 * random.random()))
                unreadable += 1
            except Exception as error:
                fault = self.provider.classify(error)
                if fault is None:
                    raise
                self._handle(fault, attempts)  # returns only when the call should be asked again

    def _handle(self, fault: Fault, attempts: list[int]) -> None:
        message = self.redact(fault.message)
        if fault.kind == UNSTRUCTURED and self.provider.structured:
            log.warning("the judge endpoint refused structured output (%s); asking for JSON in the prompt alone "
                        "from now on", message)
            self.provider.structured = False
            return
        if fault.kind == FAILED:
            self._failed(f"{message} (after {_retries(attempts)})")
        if fault.kind == REJECTED:
            raise _CallFailed(message)
        if fault.kind == TIMEOUT:
            self._stop(self._no_answer(self.timeout, attempts, "--judge-timeout"))
        if fault.kind == UNREACHABLE:
            self._stop(f"lost the judge at {self.provider.where} after {_retries(attempts)} ({message}); replies "
                       f"so far are cached: re-run to resume once it is back")
        if fault.kind in (REFUSED, INVALID, UNSTRUCTURED):
            self._stop(message)
        raise AssertionError(f"unknown fault kind {fault.kind!r}")

    def _failed(self, message: str) -> None:
        """This call failed after its retries; several in a row stop the run."""
        self._failed_in_a_row += 1
        if self._failed_in_a_row >= FAILED_IN_A_ROW_STOP:
            self._stop(f"the judge at {self.provider.where} failed {self._failed_in_a_row} calls in a row, each "
                       f"after its retries (last: {message}); replies so far are cached: re-run to resume once it "
                       f"answers again")
        raise _CallFailed(message)

    def _stop(self, message: str) -> None:
        self.stop_reason = self.stop_reason or UserError(message)
        raise _CallFailed(message)

    def _no_answer(self, seconds: float, attempts: list[int], flag: str) -> str:
        return (f"the judge at {self.provider.where} did not answer within {seconds:g} s ({_retries(attempts)}); "
                f"check the server or raise {flag}")

    # ------------------------------------------------------------ hygiene and release

    def redact(self, text: str) -> str:
        if self.provider.secret:
            text = text.replace(self.provider.secret, "***")
        return _KEY_PATTERN.sub("sk-***", text)

    async def aclose(self) -> None:
        await self.provider.aclose()

    def close(self) -> None:
        self.cache.close()


class _CallFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _retries(attempts: list[int]) -> str:
    retries = max(attempts[0] - 1, 0)
    return f"{retries} {'retry' if retries == 1 else 'retries'}"


def _joined(replies: list[str]) -> str:
    """All replies of one call, re-asks included, so the stored raw reply shows what was read."""
    return "\n\n--- re-ask ---\n\n".join(replies)
