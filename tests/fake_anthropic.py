"""A real Anthropic-compatible HTTP server on 127.0.0.1, in a thread, for tests.

It speaks enough of the Messages API for the anthropic SDK (`POST /v1/messages`, `GET /v1/models`), in
Anthropic's shapes (a `message` with text content blocks and input/output token usage; errors as
{"type": "error", "error": {"type", "message"}}), so code under test runs through the real client, its
retries and its timeouts. Scripting is tests/fake_openai.py's:

    from tests.fake_anthropic import FakeAnthropic, overloaded

    with FakeAnthropic(reply=lambda body: '{"verdict": "A", "reason": "ok"}') as server:
        server.queue(overloaded())                    # the next request gets a 529, then `reply` answers
        client = anthropic.Anthropic(base_url=server.base_url, api_key="test")
        ...

`reply(body)` gets the request's JSON body (`system`, `messages`, `max_tokens`, ...) and returns the
assistant's text or a `Response`. `FakeAnthropic(hang=True)` never answers anything.
"""

from __future__ import annotations

from tests.fake_openai import FakeOpenAI, Response, never_answers, slow

__all__ = ["FakeAnthropic", "Response", "api_error", "message", "never_answers", "overloaded", "rate_limited",
           "server_error", "slow", "error_body_200"]


def message(text: str, body: dict | None = None) -> Response:
    """A well-formed Messages API reply whose text is `text`; token counts are a fixed function of the texts
    (about 4 characters a token), so tests can compute what they expect."""
    body = body or {}
    prompt_chars = len(str(body.get("system", ""))) + sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return Response(body={
        "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model", "fake-claude"),
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": prompt_chars // 4 + 10, "output_tokens": len(text) // 4 + 1},
    })


def api_error(status: int, error_type: str, text: str, headers: dict | None = None) -> Response:
    """An error in Anthropic's shape, e.g. api_error(401, "authentication_error", "invalid x-api-key")."""
    return Response(status=status, headers=headers or {},
                    body={"type": "error", "error": {"type": error_type, "message": text}})


def rate_limited(retry_after: float = 1) -> Response:
    return api_error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                     headers={"retry-after": str(retry_after)})


def overloaded() -> Response:
    """529: Anthropic's API is overloaded (the SDK retries it like a 5xx)."""
    return api_error(529, "overloaded_error", "Overloaded")


def server_error() -> Response:
    return api_error(500, "api_error", "Internal server error")


def error_body_200() -> Response:
    """HTTP 200 whose body is an error, as some proxies send."""
    return Response(status=200, body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


class FakeAnthropic(FakeOpenAI):
    """The server; `base_url` is its root (the SDK adds /v1)."""

    chat_path = "/v1/messages"
    url_suffix = ""
    thread_name = "fake-anthropic"

    def _wrap(self, text: str, body: dict) -> Response:
        return message(text, body)

    def _error(self, status: int, text: str) -> Response:
        return api_error(status, "not_found_error" if status == 404 else "invalid_request_error", text)

    def _models(self) -> Response:
        return Response(body={"data": [{"type": "model", "id": "fake-claude", "display_name": "Fake Claude",
                                        "created_at": "2025-01-01T00:00:00Z"}],
                              "has_more": False, "first_id": "fake-claude", "last_id": "fake-claude"})
