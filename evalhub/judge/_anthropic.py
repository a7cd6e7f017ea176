"""`anthropic:MODEL`: a Claude judge through the anthropic SDK's Messages API, or any Anthropic-compatible
server with --judge-base-url (its root URL; a trailing /v1 is dropped, since the SDK adds it). The key is
ANTHROPIC_API_KEY; ANTHROPIC_BASE_URL is honoured when no URL is given.

Transport retries are the SDK's: it retries 408/409/429, 5xx and 529 (overloaded) with exponential backoff,
honouring Retry-After. The Messages API has no seed and no JSON-schema switch every compatible server
knows, so the verdict's form is asked for in the prompt alone and an unreadable reply is re-asked. The
reachability check is `GET /v1/models`, which costs nothing; a server without it is let through.
"""

from __future__ import annotations

import os

import anthropic

from evalhub.judge._provider import (Completion, Fault, ScaledBackoff, Unreadable, classify_sdk_error, count_attempt,
                                     json_body, sdk_provider_setup)


class _Client(ScaledBackoff, anthropic.AsyncAnthropic):
    pass


class AnthropicProvider:
    """One Claude (or Anthropic-compatible) judge model behind one endpoint."""

    batched = False
    structured = False

    def __init__(self, judge: str, model: str, options):
        base_url = options.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        if base_url is not None:
            base_url = base_url.rstrip("/").removesuffix("/v1")
        self.sampling = {"temperature": 0.0, "max_tokens": options.max_completion_tokens}
        sdk_provider_setup(self, _Client, anthropic, judge=judge, model=model, options=options, base_url=base_url,
                           key_variable="ANTHROPIC_API_KEY",
                           missing_key="the anthropic judge needs an API key: set ANTHROPIC_API_KEY, or use --judge "
                                       "reference (offline), or --judge-base-url URL for an Anthropic-compatible server")

    async def _count(self, request) -> None:
        count_attempt()
        if request.url.path.endswith("/messages"):  # judge calls only, not the reachability check
            self.requests += 1

    async def check(self) -> None:
        await self._client.get("/v1/models", cast_to=str, options={"max_retries": min(1, self._client.max_retries)})

    async def complete(self, messages: list[dict], structured: bool) -> Completion:
        # The Messages API takes the system prompt apart from the turns.
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        body = {"model": self.model, "system": system, "messages": turns, **self.sampling}
        data = json_body(await self._client.post("/v1/messages", cast_to=str, body=body))
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise Unreadable(f"HTTP 200 without content: {str(data)[:120]!r}")
        text = "".join(str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        usage = data.get("usage") or {}
        return Completion(text, int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))

    def classify(self, error: BaseException) -> Fault | None:
        return classify_sdk_error(anthropic, error, self.model, "ANTHROPIC_API_KEY")

    async def aclose(self) -> None:
        await self._client.close()
