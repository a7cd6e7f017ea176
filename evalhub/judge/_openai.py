"""A judge behind any OpenAI-compatible chat endpoint (OpenAI itself, or e.g. vLLM with --judge-base-url).

Transport reliability is the openai SDK's: it retries 408/409/429/5xx and timeouts with exponential backoff
and jitter, honouring Retry-After, and never retries 400/401/403. On top of it this module adds what the SDK
cannot know: an HTTP 200 whose body is an error (or not JSON) is not a reply and is retried the same way;
401/403/404 and 400 stop the whole run with the provider's message, since every other call would fail
alike, and so does a server that cannot be reached even after the retries; a 400 about `response_format`
switches structured output off for the rest of the run instead. Before the first uncached call a free
`GET /models` checks that the endpoint is there and takes the key.

Every successful reply is written to the cache before it is parsed. An unreadable reply is re-asked
(`reasks` times) in the same conversation. The API key never leaves the client: provider messages and
replies are scrubbed of it before they are stored or shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re

from evalhub.errors import UserError
from evalhub.judge._cache import ReplyCache, cache_key
from evalhub.judge._cost import Budget
from evalhub.judge._protocol import (REASK, RESPONSE_FORMAT, TEMPLATE_HASH, CallOutcome, PairRequest,
                                     build_messages, new_marker, parse_verdict)

log = logging.getLogger(__name__)

_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")
# Sent to servers that need no key (a local vLLM accepts any unless started with --api-key).
NO_KEY = "not-needed"


class _Unreadable(Exception):
    """HTTP 200 that is not a chat completion (an error body, broken JSON, no choices): retried."""


class OpenAIJudge:
    """One judge model behind one endpoint, shared by all the calls of a run."""

    def __init__(self, judge: str, model: str, api_key: str, base_url: str | None, timeout: float,
                 max_retries: int, max_completion_tokens: int, seed: int, reasks: int, structured: bool,
                 cache: ReplyCache, budget: Budget):
        import openai

        self.judge, self.model = judge, model
        self.cache, self.budget = cache, budget
        self.max_retries, self.reasks = max_retries, reasks
        self.structured = structured
        self.sampling = {"temperature": 0.0, "max_completion_tokens": max_completion_tokens, "seed": seed}
        self._secret = "" if api_key == NO_KEY else api_key
        self.http_requests = 0  # every HTTP request, SDK retries included
        self.cache_hits = 0     # replies taken from the cache instead of asked
        self.stop_reason: UserError | None = None  # set when the run must stop: no new call starts

        async def count(request) -> None:
            if request.url.path.endswith("/chat/completions"):  # judge calls only, not the reachability check
                self.http_requests += 1

        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [count]}))

    async def check_reachable(self, requests: list[PairRequest], force: bool = False) -> None:
        """Before any call that the cache cannot answer: is the endpoint there, and does it take the key?

        `GET /models` costs nothing, so an unreachable URL or a refused key stops the run in a second,
        before anything is spent, instead of after every call has used up its retries. A fully cached
        re-run makes no request at all and so works offline.
        """
        import openai

        if not force and all(self.cache.get(self._key(request, [])) is not None for request in requests):
            return
        try:
            await self._client.get("/models", cast_to=str, options={"max_retries": 1})
        except openai.APIConnectionError as error:
            raise UserError(f"cannot reach the judge at {self._client.base_url} ({type(error).__name__}: "
                            f"{self.redact(str(error))}); check --judge-base-url and that the server is up") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise UserError(f"the judge endpoint refused the credentials ({error.status_code}): "
                            f"{self.redact(_provider_message(error))}; check OPENAI_API_KEY, or use --judge reference"
                            ) from None
        except openai.APIStatusError:
            pass  # a server without /models: the calls themselves will tell

    def _key(self, request: PairRequest, earlier: list[str]) -> str:
        return cache_key(self.judge, TEMPLATE_HASH, request.prompt, request.reference, request.answer_a,
                         request.answer_b, self.sampling, earlier)

    async def aclose(self) -> None:
        await self._client.close()

    def close(self) -> None:
        self.cache.close()

    def redact(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return _KEY_PATTERN.sub("sk-***", text)

    async def judge_pair(self, request: PairRequest) -> CallOutcome:
        """Judge one ordered pair: cached turns are reused, the rest asked; re-ask while unreadable."""
        messages = build_messages(request, new_marker(request))
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
                    reply, prompt_tokens, completion_tokens = await self._complete(messages)
                except _CallFailed as failure:
                    self.budget.release(held)
                    return CallOutcome(raw_reply=_joined(earlier) or None, status="api_error", label=None,
                                       reason=failure.message, **billed)
                cost = self.budget.settle(held, prompt_bytes, prompt_tokens, completion_tokens)
                billed["prompt_tokens"] += prompt_tokens
                billed["completion_tokens"] += completion_tokens
                if billed["cost_usd"] is not None and cost is not None:
                    billed["cost_usd"] += cost
                self.cache.put(key, reply, prompt_tokens, completion_tokens)  # stored before it is parsed
            earlier.append(reply)
            verdict = parse_verdict(reply)
            if verdict.label is not None:
                return CallOutcome(raw_reply=_joined(earlier), status="ok", label=verdict.label,
                                   reason=verdict.reason, **billed)
            messages = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": REASK}]
        return CallOutcome(raw_reply=_joined(earlier), status="parse_fail", label=None, reason=verdict.reason,
                           **billed)

    async def _complete(self, messages: list[dict]) -> tuple[str, int, int]:
        """One chat completion: (reply text, prompt tokens, completion tokens), or _CallFailed."""
        import openai

        attempt = 0
        while True:
            body = dict(model=self.model, messages=messages, **self.sampling)
            if self.structured:
                body["response_format"] = RESPONSE_FORMAT
            try:
                # The SDK's plain `post` keeps its retries, backoff and timeouts, hands back the body as text
                # (stored before anything is parsed), and skips the typed-params machinery of
                # `chat.completions.create`, which costs more client CPU than the rest of a call (bench/).
                text = await self._client.post("/chat/completions", cast_to=str, body=body)
                return self._read(text)
            except openai.BadRequestError as error:
                message = self.redact(_provider_message(error))
                if self.structured and re.search(r"response_format|json_schema|structured", message, re.I):
                    log.warning("the judge endpoint refused structured output (%s); asking for JSON in the prompt "
                                "alone from now on", message)
                    self.structured = False
                    continue
                self._stop(f"the judge endpoint rejected the request (400): {message}; fix what it names, "
                           f"or choose another --judge")
            except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
                self._stop(f"the judge endpoint refused the credentials ({error.status_code}): "
                           f"{self.redact(_provider_message(error))}; check OPENAI_API_KEY, or use --judge reference")
            except openai.NotFoundError as error:
                self._stop(f"the judge endpoint does not know model {self.model!r} or its URL (404): "
                           f"{self.redact(_provider_message(error))}; check --judge and --judge-base-url")
            except openai.APIStatusError as error:  # 429/5xx after the SDK's retries
                raise _CallFailed(f"HTTP {error.status_code} after {self.max_retries} retries: "
                                  f"{self.redact(_provider_message(error))}") from None
            except openai.APITimeoutError:
                raise _CallFailed(f"timed out after {self.max_retries} retries") from None
            except openai.APIConnectionError as error:  # the server went away: every other call would fail too
                self._stop(f"lost the judge at {self._client.base_url} after {self.max_retries} retries "
                           f"({self.redact(str(error))}); replies so far are cached: re-run to resume once it is back")
            except _Unreadable as error:
                if attempt >= self.max_retries:
                    raise _CallFailed(f"{self.redact(str(error))} (after {self.max_retries} retries)") from None
                # Same schedule as the SDK's: 0.5 s doubling, at most 8 s, minus up to 25 % jitter.
                await asyncio.sleep(min(0.5 * 2 ** attempt, 8.0) * (1 - 0.25 * random.random()))
                attempt += 1

    def _read(self, body: str) -> tuple[str, int, int]:
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise _Unreadable(f"HTTP 200 whose body is not JSON: {body[:120]!r}") from None
        if not isinstance(data, dict):
            raise _Unreadable(f"HTTP 200 whose body is not a chat completion: {body[:120]!r}")
        if data.get("error"):
            error = data["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise _Unreadable(f"HTTP 200 whose body is an error: {str(message)[:200]}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Unreadable(f"HTTP 200 without choices: {body[:120]!r}")
        message = choices[0].get("message") or {}
        content = message.get("content")
        if content is None:
            content = message.get("refusal") or ""  # a refusal is a reply; it will not parse as a verdict
        usage = data.get("usage") or {}
        return self.redact(str(content)), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)

    def _stop(self, message: str) -> None:
        self.stop_reason = self.stop_reason or UserError(message)
        raise _CallFailed(message)


class _CallFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _provider_message(error) -> str:
    """The provider's own message from an error body, else the SDK's."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(error, "message", error))


def _joined(replies: list[str]) -> str:
    """All replies of one call, re-asks included, so the stored raw reply shows what was read."""
    return "\n\n--- re-ask ---\n\n".join(replies)
