"""`openai:MODEL`: a judge behind any OpenAI-compatible chat endpoint (OpenAI itself, or e.g. vLLM's server
with --judge-base-url). The key is OPENAI_API_KEY; OPENAI_BASE_URL is honoured when no URL is given.

Only the call and the meaning of its errors live here; the cache, budget, re-asks, retries of unreadable
bodies, time limits and redaction are the wrapper's (_wrapper.py). Transport retries are the openai SDK's.
A 400 about `response_format` switches structured output off for the rest of the run. The reachability
check is a free `GET /models`.
"""

from __future__ import annotations

import os
import re

import openai

from evalhub.judge._protocol import RESPONSE_FORMAT
from evalhub.judge._provider import (UNSTRUCTURED, Completion, Fault, ScaledBackoff, Unreadable, classify_sdk_error,
                                     count_attempt, json_body, provider_message, sdk_provider_setup)


class _Client(ScaledBackoff, openai.AsyncOpenAI):
    pass


class OpenAIProvider:
    """One judge model behind one OpenAI-compatible endpoint."""

    batched = False

    def __init__(self, judge: str, model: str, options):
        base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.structured = options.structured_output
        self.response_format = RESPONSE_FORMAT  # the protocol's schema (make_judge sets it; None: none asked for)
        self.sampling = {"temperature": 0.0, "max_completion_tokens": options.max_completion_tokens,
                         "seed": options.seed}
        sdk_provider_setup(self, _Client, openai, judge=judge, model=model, options=options, base_url=base_url,
                           key_variable="OPENAI_API_KEY",
                           missing_key="the openai judge needs an API key: set OPENAI_API_KEY, or use --judge reference "
                                       "(offline), or --judge-base-url URL for an OpenAI-compatible server")

    async def _count(self, request) -> None:
        count_attempt()
        if request.url.path.endswith("/chat/completions"):  # judge calls only, not the reachability check
            self.requests += 1

    async def check(self) -> None:
        await self._client.get("/models", cast_to=str, options={"max_retries": min(1, self._client.max_retries)})

    async def complete(self, messages: list[dict], structured: bool) -> Completion:
        body = dict(model=self.model, messages=messages, **self.sampling)
        if structured and self.response_format is not None:
            body["response_format"] = self.response_format
        # The SDK's plain `post` keeps its retries, backoff and timeouts, hands back the body as text, and
        # skips the typed-params machinery of `chat.completions.create`, which costs more client CPU than the
        # rest of a call (bench/).
        data = json_body(await self._client.post("/chat/completions", cast_to=str, body=body))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise Unreadable(f"HTTP 200 without choices: {str(data)[:120]!r}")
        message = choices[0].get("message") or {}
        content = message.get("content")
        if content is None:
            content = message.get("refusal") or ""  # a refusal is a reply; it will not parse as a verdict
        usage = data.get("usage") or {}
        return Completion(str(content), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))

    def classify(self, error: BaseException) -> Fault | None:
        if isinstance(error, openai.BadRequestError) and \
                re.search(r"response_format|json_schema|structured", provider_message(error), re.I):
            return Fault(UNSTRUCTURED, f"the judge endpoint rejected the request (400): {provider_message(error)}; "
                                       f"fix what it names, or choose another --judge")
        return classify_sdk_error(openai, error, self.model, "OPENAI_API_KEY")

    async def aclose(self) -> None:
        await self._client.close()
