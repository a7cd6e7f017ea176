"""The openai backend against real HTTP servers on 127.0.0.1 that speak the OpenAI protocol.

Each server lists the models it serves and answers `<model> says: <prompt>` (so a test can tell which role and
which item an answer belongs to), unless a test scripts a fault for particular requests.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalhub.errors import UserError
from evalhub.generate import BackendOptions, generate_answers
from evalhub.records import DecodingSettings, GoldenItem

ITEMS = [GoldenItem(id=f"q{k}", instruction=f"Question number {k}?", output="") for k in range(8)]


class OpenAIServer:
    """A threaded HTTP server serving `models`; `fault(body, nth)` may return (status, message) to fail a request."""

    def __init__(self, models=("base-model", "tuned-model"), delay: float = 0.0, fault=None):
        self.models, self.delay, self.fault = list(models), delay, fault
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})
                else:
                    self._json(404, {"error": {"message": "no route"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with server._lock:
                    server.bodies.append(body)
                    server.paths.append(self.path)
                    nth = len(server.bodies)
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    failure = server.fault(body, nth) if server.fault else None
                    if failure:
                        status, message = failure
                        self._json(status, {"error": {"message": message, "type": "error"}}, {"retry-after-ms": "10"})
                        return
                    prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
                    text = f"{body['model']} says: {prompt}"
                    if "messages" in body:
                        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        kind = "chat.completion"
                    else:
                        choice = {"index": 0, "text": text, "finish_reason": "stop"}
                        kind = "text_completion"
                    self._json(200, {"id": "x", "object": kind, "created": 0, "model": body["model"], "choices": [choice],
                                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _json(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def servers():
    started = []

    def start(**kwargs) -> OpenAIServer:
        started.append(OpenAIServer(**kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_answers_both_roles_by_id_with_the_decoding_settings(servers):
    server = servers()
    settings = DecodingSettings(temperature=0.0, top_p=1.0, max_new_tokens=17, stop=("\n\n",), seed=5)
    answers = generate_answers("base-model", "tuned-model", ITEMS, settings, backend="openai",
                               options=BackendOptions(base_urls=(server.url,), concurrency=4))
    assert set(answers) == {"base", "tuned"}
    for role, model in (("base", "base-model"), ("tuned", "tuned-model")):
        assert list(answers[role]) == [item.id for item in ITEMS]
        for item in ITEMS:
            generation = answers[role][item.id]
            assert (generation.status, generation.item_id, generation.prompt) == ("ok", item.id, item.prompt)
            assert generation.output == f"{model} says: {item.prompt}"
    sent = server.bodies[0]
    assert (sent["temperature"], sent["top_p"], sent["max_completion_tokens"], sent["seed"], sent["stop"]) == \
        (0.0, 1.0, 17, 5, ["\n\n"])


def test_a_resumed_run_asks_only_for_what_is_missing(servers, monkeypatch):
    from evalhub.generate import openai as backend

    monkeypatch.setattr(backend, "FLUSH_ANSWERS", 3)  # 8 items: several hand-overs, not one at the end
    server = servers()
    options = BackendOptions(base_urls=(server.url,), concurrency=2)
    whole = generate_answers("base-model", "tuned-model", ITEMS, backend="openai", options=options)
    done = {"base": {i.id: whole["base"][i.id] for i in ITEMS[:5]}, "tuned": {}}
    received: list[tuple[str, list[str]]] = []
    asked_before = len(server.bodies)
    resumed = generate_answers("base-model", "tuned-model", ITEMS, backend="openai", options=options, done=done,
                               on_answers=lambda role, answers: received.append((role, list(answers))))
    assert resumed == whole
    assert len(server.bodies) - asked_before == 3 + 8  # the 3 base answers missing, every tuned one
    for role, missing in (("base", ITEMS[5:]), ("tuned", ITEMS)):
        assert sorted(i for r, ids in received if r == role for i in ids) == sorted(i.id for i in missing)
    assert len(received) >= 3 and all(len(ids) <= 3 for _, ids in received)


def test_an_interrupt_stops_the_queued_requests(servers, monkeypatch):
    from evalhub.generate import openai as backend

    monkeypatch.setattr(backend, "FLUSH_ANSWERS", 2)
    server = servers(delay=0.3)
    items = [GoldenItem(id=f"q{k}", instruction=f"Question {k}?", output="") for k in range(40)]

    def interrupt(role, answers):
        raise KeyboardInterrupt  # as Ctrl-C would, while the first answers are handed on

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        generate_answers("base-model", None, items, backend="openai", on_answers=interrupt,
                         options=BackendOptions(base_urls=(server.url,), concurrency=2))
    assert time.monotonic() - start < 3  # all 40, two at a time, would take 6 s
    time.sleep(1.0)
    # What reached the server: the answers handed on before the interrupt plus, at most, the requests already in
    # flight when it came (on a busy machine those can arrive after generate returns); nothing queued after.
    assert len(server.bodies) <= backend.FLUSH_ANSWERS + 2 < len(items)


def test_base_alone_when_tuned_is_none(servers):
    server = servers()
    answers = generate_answers("base-model", None, ITEMS[:2], backend="auto",
                               options=BackendOptions(base_urls=(server.url,)))
    assert list(answers) == ["base"]


def test_raw_prompts_use_the_completions_endpoint(servers):
    server = servers()
    answers = generate_answers("base-model", None, ITEMS[:2], DecodingSettings(chat_template=False), backend="openai",
                               options=BackendOptions(base_urls=(server.url,)))
    assert all(path.endswith("/completions") and "chat" not in path for path in server.paths)
    assert answers["base"]["q1"].output == "base-model says: Question number 1?"


def test_rate_limits_and_server_errors_are_retried(servers):
    # The first three requests get 429, 503, 429; the SDK backs off (Retry-After: 10 ms) and tries again.
    server = servers(fault=lambda body, nth: {1: (429, "slow down"), 2: (503, "overloaded"), 3: (429, "slow down")}.get(nth))
    answers = generate_answers("base-model", None, ITEMS[:1], backend="openai",
                               options=BackendOptions(base_urls=(server.url,), concurrency=1, max_retries=5))
    assert answers["base"]["q0"].status == "ok"
    assert len(server.bodies) == 4


def test_an_item_still_failing_after_the_retries_fails_alone(servers):
    server = servers(fault=lambda body, nth: (500, "boom") if "number 3" in str(body) else None)
    answers = generate_answers("base-model", None, ITEMS, backend="openai",
                               options=BackendOptions(base_urls=(server.url,), max_retries=1))
    failed = [g for g in answers["base"].values() if g.status == "failed"]
    assert [g.item_id for g in failed] == ["q3"]
    assert "after 1 retries" in failed[0].reason and "boom" in failed[0].reason and failed[0].output is None


def test_a_prompt_longer_than_the_context_fails_that_item_only(servers):
    message = "This model's maximum context length is 512 tokens. However, your prompt contains 900 input tokens."
    server = servers(fault=lambda body, nth: (400, message) if "number 5" in str(body) else None)
    answers = generate_answers("base-model", "tuned-model", ITEMS, backend="openai",
                               options=BackendOptions(base_urls=(server.url,)))
    for role in ("base", "tuned"):
        statuses = {item_id: g.status for item_id, g in answers[role].items()}
        assert statuses.pop("q5") == "failed" and set(statuses.values()) == {"ok"}
        assert "maximum context length is 512" in answers[role]["q5"].reason


def test_requests_go_round_robin_over_replicas(servers):
    first, second = servers(), servers()
    generate_answers("base-model", None, ITEMS, backend="openai",
                     options=BackendOptions(base_urls=(first.url, second.url), concurrency=2))
    assert len(first.bodies) == len(second.bodies) == len(ITEMS) // 2


def test_concurrency_is_bounded(servers):
    server = servers(delay=0.15)
    generate_answers("base-model", "tuned-model", ITEMS, backend="openai",
                     options=BackendOptions(base_urls=(server.url,), concurrency=3))
    assert server.most_in_flight == 3


def test_a_model_that_is_not_served_is_a_user_error(servers):
    server = servers(models=("base-model",))
    with pytest.raises(UserError, match=r"does not serve zorvish .*serves: base-model.*evalhub serve"):
        generate_answers("base-model", "zorvish", ITEMS, backend="openai", options=BackendOptions(base_urls=(server.url,)))
    assert server.bodies == []  # nothing was spent


def test_an_unreachable_server_and_a_missing_url_are_user_errors(servers):
    server = servers()
    url = server.url
    server.close()
    with pytest.raises(UserError, match="cannot reach"):
        generate_answers("base-model", None, ITEMS, backend="openai",
                         options=BackendOptions(base_urls=(url,), max_retries=0, request_timeout_s=5))
    with pytest.raises(UserError, match="--base-url"):
        generate_answers("base-model", None, ITEMS, backend="openai")


def test_the_api_key_is_never_in_repr_or_stored_options(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    options = BackendOptions(base_urls=["http://127.0.0.1:1/v1"])
    assert options.api_key == "sk-secret-value"
    assert "sk-secret" not in repr(options) and "sk-secret" not in json.dumps(options.to_dict())
    assert options.base_urls == ("http://127.0.0.1:1/v1",)


class _AlwaysFails(BaseHTTPRequestHandler):
    """Every request, the model list included, gets HTTP 500 (Retry-After: 10 ms, so the SDK's retries are quick)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _fail(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = json.dumps({"error": {"message": "the model crashed", "type": "error"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("retry-after-ms", "10")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _fail


def test_compare_against_a_server_that_always_answers_500_is_a_user_error(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysFails)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    golden = Path(__file__).resolve().parents[1] / "golden_sets" / "toy_zorvish.jsonl"
    try:
        proc = subprocess.run([sys.executable, "-m", "evalhub", "compare", "m-a", "m-b", "--backend", "openai",
                               "--base-url", url, "--golden", str(golden), "--judge", "reference",
                               "--db", str(tmp_path / "s.duckdb"), "--report-dir", str(tmp_path / "reports")],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
    finally:
        httpd.shutdown()
        httpd.server_close()
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert last.startswith("error: ") and url in last and "HTTP 500" in last and "bug" not in proc.stderr
    assert not (tmp_path / "s.duckdb").exists()
