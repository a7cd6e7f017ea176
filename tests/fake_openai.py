"""A real OpenAI-compatible HTTP server on 127.0.0.1, in a thread, for tests and benchmarks.

It speaks enough of the protocol for the openai SDK (`POST /v1/chat/completions`, `GET /v1/models`) so that
code under test runs through the real client, its retries and its timeouts. What it answers is scripted:

    from tests.fake_openai import FakeOpenAI, rate_limited

    with FakeOpenAI(reply=lambda body: '{"verdict": "A", "reason": "ok"}') as server:
        server.queue(rate_limited(retry_after=1))      # the next request gets a 429, then `reply` answers
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        ...
        server.requests                                # every request received, in arrival order

`reply(body)` gets the request's JSON body and returns either the assistant's text (wrapped in a well-formed
chat completion) or a `Response` (any status, body, headers or delay: the way to inject faults per request).
Responses passed to `queue()` are served first, one per request, whatever the request says. `never_answers()`
holds a request until the server closes; `FakeOpenAI(hang=True)` does that to every request, model list
included: a judge that never answers.

tests/fake_anthropic.py is the same server speaking Anthropic's Messages API: a subclass that changes the
routes and the body shapes (the class attributes and `_wrap`/`_error` below).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union


@dataclass(frozen=True)
class Response:
    """One HTTP answer: a status, a body (a dict is sent as JSON, a str as is), headers, and a delay first."""

    status: int = 200
    body: Union[dict, str] = ""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict          # names in lower case
    body: dict | None
    at: float  # time.monotonic() on arrival


Reply = Callable[[dict], Union[str, Response]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 refuses connections when many clients connect at once


def completion(content: str, body: dict | None = None, model: str = "fake-judge") -> Response:
    """A well-formed chat completion whose message is `content`; token counts are a fixed function of the text
    (about 4 characters a token), so tests can compute the cost they expect."""
    prompt_chars = sum(len(str(m.get("content", ""))) for m in (body or {}).get("messages", []))
    prompt_tokens = prompt_chars // 4 + 10
    completion_tokens = len(content) // 4 + 1
    return Response(body={
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": (body or {}).get("model", model),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


def http_error(status: int, message: str, headers: dict | None = None) -> Response:
    """An error in OpenAI's shape, e.g. http_error(401, "Incorrect API key provided")."""
    return Response(status=status, headers=headers or {},
                    body={"error": {"message": message, "type": "invalid_request_error", "code": None}})


def rate_limited(retry_after: float = 1) -> Response:
    """A 429 that asks the client to wait `retry_after` seconds."""
    return http_error(429, "Rate limit reached; please retry", headers={"Retry-After": str(retry_after)})


def server_error() -> Response:
    return http_error(500, "The server had an error while processing your request")


def slow(seconds: float, then: Response | None = None) -> Response:
    """An answer that comes only after `seconds`: past the client's timeout, it is a timeout."""
    then = then or completion('{"verdict": "tie", "reason": "late"}')
    return Response(status=then.status, body=then.body, headers=then.headers, delay=seconds)


def never_answers() -> Response:
    """A request held until the server closes: past every client timeout."""
    return slow(3600.0)


def error_body_200(message: str = "The model is overloaded") -> Response:
    """HTTP 200 whose body is an error, as some proxies and servers send."""
    return Response(status=200, body={"error": {"message": message, "type": "server_error"}})


def malformed_body() -> Response:
    """HTTP 200 whose body is not JSON at all."""
    return Response(status=200, body='{"id": "chatcmpl-broken", "choices": [')


class FakeOpenAI:
    """The server. Use as a context manager, or call start() and close()."""

    chat_path = "/chat/completions"   # the route that answers with `reply`
    url_suffix = "/v1"                # what base_url adds to the server's root
    thread_name = "fake-openai"

    def __init__(self, reply: Reply | None = None, delay: float = 0.0, hang: bool = False):
        self._reply = reply or (lambda body: '{"verdict": "tie", "reason": "default fake reply"}')
        self._delay = delay
        self._hang = hang
        self._closed = threading.Event()  # ends held requests when the server closes
        self._queued: deque[Response] = deque()
        self._lock = threading.Lock()
        self.requests: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting ---------------------------------------------------------------------------------------
    def queue(self, *responses: Response) -> None:
        """Serve these to the next requests, one each, before `reply` is asked again."""
        with self._lock:
            self._queued.extend(responses)

    @property
    def chat_requests(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(self.chat_path)]

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.url_suffix}"

    # --- the protocol's shapes (overridden by tests/fake_anthropic.py) -------------------------------------
    def _wrap(self, text: str, body: dict) -> Response:
        return completion(text, body)

    def _error(self, status: int, message: str) -> Response:
        return http_error(status, message)

    def _models(self) -> Response:
        return Response(body={"object": "list", "data": [{"id": "fake-judge", "object": "model"}]})

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
            disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms ACK stalls

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                fake._record(self, None)
                if fake._hang:
                    self._send(never_answers())
                elif self.path.split("?")[0].rstrip("/").endswith("/models"):
                    self._send(fake._models())
                else:
                    self._send(fake._error(404, f"no route {self.path}"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(fake._error(400, "request body is not JSON"))
                    return
                fake._record(self, body)
                if fake._hang:
                    self._send(never_answers())
                elif not self.path.rstrip("/").endswith(fake.chat_path):
                    self._send(fake._error(404, f"no route {self.path}"))
                else:
                    self._send(fake._answer(body))

            def _send(self, response: Response) -> None:
                if response.delay and fake._closed.wait(response.delay):
                    return  # the server closed while the request was held: leave it unanswered
                payload = response.body if isinstance(response.body, str) else json.dumps(response.body)
                data = payload.encode("utf-8")
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------------------------
    def _record(self, handler: BaseHTTPRequestHandler, body: dict | None) -> None:
        with self._lock:
            self.requests.append(Received(handler.command, handler.path,
                                          {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic()))

    def _answer(self, body: dict) -> Response:
        with self._lock:
            queued = self._queued.popleft() if self._queued else None
        if queued is not None:
            return queued
        answer = self._reply(body)
        response = self._wrap(answer, body) if isinstance(answer, str) else answer
        if self._delay and not response.delay:
            response = Response(response.status, response.body, response.headers, self._delay)
        return response
