"""The anthropic: judge through the real anthropic SDK against a real Messages API server on 127.0.0.1, and
the time limits of every HTTP judge (anthropic: and openai:) against servers that never answer."""

from __future__ import annotations

import json
import re
import time

import pytest

from evalhub.errors import UserError
from evalhub.judge import JudgeOptions, check_judge, judge_pairs
from tests.fake_anthropic import (FakeAnthropic, api_error, error_body_200, never_answers, overloaded, rate_limited,
                                  server_error)
from tests.fake_openai import FakeOpenAI
from tests.fake_openai import rate_limited as openai_rate_limited
from tests.judge_helpers import PRICE, WRONG, answers, cached_replies, items, set_key, verdict  # noqa: F401

SECRET = "sk-ant-api03-test0123456789abcdefSECRET"
FAST = dict(retry_backoff=0.01)  # the SDK's own retries, with millisecond waits
FENCED = re.compile(r"<<<ANSWER (A|B) ([0-9a-f]{16})>>>\n(.*?)\n<<<END OF ANSWER \1 \2>>>", re.S)


def shown(body: dict) -> dict[str, str]:
    return {label: text for label, _marker, text in FENCED.findall(body["messages"][0]["content"])}


def honest(body: dict) -> str:
    """Prefers the answer written in Zorvish."""
    good = {k: v.startswith("In Zorvish") for k, v in shown(body).items()}
    return verdict("tie" if good["A"] == good["B"] else ("A" if good["A"] else "B"))


@pytest.fixture
def key(monkeypatch):
    set_key(monkeypatch, "ANTHROPIC_API_KEY", SECRET,
            ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_CUSTOM_HEADERS"))


def options(server, tmp_path, **given) -> JudgeOptions:
    defaults = dict(base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite"),
                    prices={"fake-claude": PRICE}, timeout=5.0, max_retries=3, **FAST)
    return JudgeOptions(**{**defaults, **given})


def run(server, tmp_path, items, judge="anthropic:fake-claude", **given):
    return judge_pairs(items=items, base=answers(items, WRONG), tuned=answers(items), judge=judge,
                       options=options(server, tmp_path, **given), golden_file="golden_sets/toy_zorvish.jsonl")


# ---------------------------------------------------------------- verdicts, cost, cache

def test_verdicts_flow_through_the_messages_api(key, tmp_path, items):
    with FakeAnthropic(honest) as server:
        outcome = run(server, tmp_path, items)
        calls = server.chat_requests
    assert len(calls) == 12
    for call in calls:
        # The key goes as x-api-key or, in newer SDKs, as a bearer token.
        assert SECRET in (call.headers.get("x-api-key"), call.headers.get("authorization", "").removeprefix("Bearer "))
        assert call.headers.get("anthropic-version")
        body = call.body
        assert body["model"] == "fake-claude" and body["temperature"] == 0 and body["max_tokens"] == 300
        assert "impartial judge" in body["system"] and [m["role"] for m in body["messages"]] == ["user"]
        assert set(shown(body)) == {"A", "B"}
    stats = outcome.stats
    assert (stats["wins"], stats["losses"], stats["ties"], stats["parse_failures"]) == (6, 0, 0, 0)
    assert stats["judge_calls"] == 12 and stats["extra"]["structured_output"] is False
    rows = outcome.judgments
    assert all(r["judge"] == "anthropic:fake-claude" and r["status"] == "ok" for r in rows)
    # Tokens and cost from Anthropic's usage fields (input_tokens, output_tokens) at the given prices.
    tokens = stats["extra"]["prompt_tokens"], stats["extra"]["completion_tokens"]
    assert tokens[0] > 0 and tokens[1] > 0
    assert stats["cost_usd"] == pytest.approx((tokens[0] * PRICE[0] + tokens[1] * PRICE[1]) / 1e6)


def test_a_rerun_is_answered_by_the_cache_alone(key, tmp_path, items):
    with FakeAnthropic(honest) as server:
        first = run(server, tmp_path, items)
        base_url = server.base_url
    # The server is gone: only the cache can answer, and it must answer everything.
    second = judge_pairs(items, answers(items, WRONG), answers(items), "anthropic:fake-claude",
                         JudgeOptions(base_url=base_url, cache_path=str(tmp_path / "cache.sqlite")))
    assert second.stats["judge_calls"] == 0 and second.stats["extra"]["cached_replies_used"] == 12
    assert [r["raw_reply"] for r in second.judgments] == [r["raw_reply"] for r in first.judgments]


def test_a_reply_is_not_reused_from_another_endpoint(key, tmp_path, items):
    with FakeAnthropic(honest) as one, FakeAnthropic(honest) as other:
        run(one, tmp_path, items[:2])
        again = run(other, tmp_path, items[:2])
        assert len(other.chat_requests) == 4       # same judge name and texts, another server: asked again
    assert again.stats["extra"]["cached_replies_used"] == 0


def test_an_unreadable_reply_is_reasked_in_the_same_conversation(key, tmp_path, items):
    def judge(body):
        if len(body["messages"]) == 1:
            return "I think the first one is better, on balance."
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        return honest({"messages": body["messages"][:1]})
    with FakeAnthropic(judge) as server:
        outcome = run(server, tmp_path, items[:2])
    assert outcome.stats["wins"] == 2 and outcome.stats["judge_calls"] == 8


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("fault", ["429", "529", "500", "error-body-200"])
def test_transient_faults_are_retried_until_a_reply(key, tmp_path, items, fault):
    injected = {"429": rate_limited(retry_after=1), "529": overloaded(), "500": server_error(),
                "error-body-200": error_body_200()}[fault]
    with FakeAnthropic(honest) as server:
        server.queue(injected, injected)
        outcome = run(server, tmp_path, items[:1], concurrency=1)
        calls = server.chat_requests
    assert [r["status"] for r in outcome.judgments] == ["ok", "ok"]
    assert outcome.stats["wins"] == 1 and outcome.stats["judge_calls"] == 4   # two faults, their retry, the other order
    if fault == "429":  # retry-after: 1 was honoured, not the (tiny) backoff
        assert calls[1].at - calls[0].at >= 0.9


def test_an_overloaded_judge_stops_the_run_in_one_line(key, tmp_path, items):
    with FakeAnthropic(lambda body: overloaded()) as server:
        started = time.monotonic()
        with pytest.raises(UserError) as error:
            run(server, tmp_path, items, max_retries=2)
        assert time.monotonic() - started < 20
        message = str(error.value)
        assert "\n" not in message and f"the judge at {server.base_url}" in message
    assert "calls in a row" in message and "HTTP 529" in message and "Overloaded" in message
    assert "(after 2 retries)" in message and "re-run" in message


@pytest.mark.parametrize("status, kind", [(401, "authentication_error"), (403, "permission_error")])
def test_refused_credentials_stop_the_run_with_the_providers_message_and_no_key(key, tmp_path, items, status, kind):
    with FakeAnthropic(honest) as server:
        server.queue(api_error(status, kind, f"invalid x-api-key {SECRET}"))
        with pytest.raises(UserError) as error:
            run(server, tmp_path, items, concurrency=1)
        assert len(server.chat_requests) == 1
    message = str(error.value)
    assert f"({status})" in message and "invalid x-api-key" in message and "ANTHROPIC_API_KEY" in message
    assert SECRET not in message and "sk-ant-api03" not in message


def test_check_judge_reaches_the_server_and_tells_a_refused_key(key, tmp_path):
    with FakeAnthropic(honest) as server:
        check_judge("anthropic:fake-claude", options(server, tmp_path))
        assert [r.path for r in server.requests] == ["/v1/models"]

    class Refusing(FakeAnthropic):
        def _models(self):
            return api_error(401, "authentication_error", f"invalid x-api-key {SECRET}")
    with Refusing(honest) as server:
        with pytest.raises(UserError, match=r"refused the credentials \(401\).*ANTHROPIC_API_KEY") as error:
            check_judge("anthropic:fake-claude", options(server, tmp_path))
        assert server.chat_requests == []
    assert SECRET not in str(error.value)


def test_a_server_without_a_model_list_is_let_through(key, tmp_path, items):
    class NoModels(FakeAnthropic):
        def _models(self):
            return api_error(404, "not_found_error", "no such route")
    with NoModels(honest) as server:
        check_judge("anthropic:fake-claude", options(server, tmp_path))
        assert run(server, tmp_path, items[:1]).stats["wins"] == 1


def test_missing_key_names_the_variable(monkeypatch, tmp_path, items):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(UserError, match=r"set ANTHROPIC_API_KEY, or use --judge reference"):
        judge_pairs(items, answers(items, WRONG), answers(items), "anthropic:claude-sonnet-4-5",
                    JudgeOptions(cache_path=str(tmp_path / "cache.sqlite")))
    assert not any(tmp_path.iterdir())


def test_a_compatible_server_needs_no_key_and_takes_a_v1_url(monkeypatch, tmp_path, items):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with FakeAnthropic(honest) as server:
        outcome = run(server, tmp_path, items[:2], base_url=server.base_url + "/v1/")
        assert {r.path for r in server.chat_requests} == {"/v1/messages"}
    assert outcome.stats["wins"] == 2


def test_the_api_key_is_never_stored_or_logged(key, tmp_path, items, capfd, caplog):
    leaky = lambda body: verdict(json.loads(honest(body))["verdict"], reason=f"I was called with {SECRET}")
    with FakeAnthropic(leaky) as server:
        server.queue(rate_limited(retry_after=0.1))
        outcome = run(server, tmp_path, items[:2])
    stored = json.dumps(outcome.judgments) + json.dumps(outcome.stats) + "".join(
        f.read_bytes().decode("utf-8", "replace") for f in tmp_path.glob("cache*"))
    out, err = capfd.readouterr()
    assert outcome.stats["wins"] == 2 and "I was called with ***" in stored
    for text in (stored, out, err, caplog.text):
        assert SECRET not in text and "0123456789abcdef" not in text


# ---------------------------------------------------------------- judges that never answer (both HTTP providers)

PROVIDERS = {"openai": (FakeOpenAI, "openai:fake-judge", "OPENAI_API_KEY"),
             "anthropic": (FakeAnthropic, "anthropic:fake-claude", "ANTHROPIC_API_KEY")}


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("silent", ["everything", "judge-calls"])
def test_a_judge_that_never_answers_fails_in_one_line_naming_the_endpoint(monkeypatch, tmp_path, items, provider,
                                                                          silent):
    """Silent everywhere: the reachability check times out (it retries once). Silent on judge calls only: each
    call times out on every attempt, and the first to give up stops the run."""
    server_class, judge, variable = PROVIDERS[provider]
    monkeypatch.setenv(variable, "test-key")
    timeout, retries = 1.0, 2
    hang = silent == "everything"
    with server_class(lambda body: never_answers(), hang=hang) as server:
        started = time.monotonic()
        with pytest.raises(UserError) as error:
            run(server, tmp_path, items[:2], judge=judge, timeout=timeout, max_retries=retries)
        elapsed = time.monotonic() - started
        message = str(error.value)
        assert "\n" not in message and f"the judge at {server.base_url}" in message
    attempts = 2 if hang else retries + 1
    assert f"did not answer within 1 s ({attempts - 1} {'retry' if attempts == 2 else 'retries'})" in message
    assert "raise --judge-timeout" in message
    assert timeout * attempts <= elapsed < timeout * attempts + 3
    assert cached_replies(tmp_path / "cache.sqlite") == 0


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_retries_stop_at_max_retry_seconds(monkeypatch, tmp_path, items, provider):
    """A server that keeps asking to wait: the SDK would keep waiting; the call's time limit stops it."""
    server_class, judge, variable = PROVIDERS[provider]
    monkeypatch.setenv(variable, "test-key")
    busy = rate_limited(retry_after=2) if provider == "anthropic" else openai_rate_limited(retry_after=2)
    with server_class(lambda body: busy) as server:
        started = time.monotonic()
        with pytest.raises(UserError) as error:
            run(server, tmp_path, items[:1], judge=judge, timeout=1.0, max_retries=10, max_retry_seconds=1.5,
                concurrency=1)
        elapsed = time.monotonic() - started
    message = str(error.value)
    assert "gave no reply within 2.5 s" in message and "raise --judge-max-retry-seconds" in message
    assert elapsed < 6


@pytest.mark.parametrize("given, words", [
    ({"timeout": 0}, "--judge-timeout must be a positive number"),
    ({"timeout": -1}, "--judge-timeout must be a positive number"),
    ({"max_retry_seconds": -1}, "--judge-max-retry-seconds must be 0 or more"),
])
def test_bad_time_limits_are_user_errors_before_any_call(key, tmp_path, items, given, words):
    with FakeAnthropic(honest) as server:
        with pytest.raises(UserError, match=re.escape(words)):
            run(server, tmp_path, items, **given)
        with pytest.raises(UserError, match=re.escape(words)):
            check_judge("anthropic:fake-claude", options(server, tmp_path, **given))
        assert server.requests == []
