"""What a judge provider implements, and the pieces the SDK-based providers share.

A provider is the one part that differs between LLM judges: how one conversation is sent and its reply text
and token counts read back (`complete`), and what its errors mean (`classify`). Everything else, the cache,
the budget, re-asks of unreadable replies, retries of HTTP-200 error bodies, the per-call time limit and key
redaction, is the wrapper's (`_wrapper.ProviderJudge`), the same for every provider.

Transport retries belong to the provider's SDK (openai and anthropic both retry 408/409/429/5xx and
timeouts with exponential backoff, honouring Retry-After): an error reaching `classify` has already used
them up, and `classify` says what it means for the run.
"""

from __future__ import annotations

import contextvars
import os
import json
from dataclasses import dataclass
from typing import Any, Protocol

from evalhub.errors import UserError
from evalhub.judge._cost import priced

# What an error that reached the wrapper means (Fault.kind):
FAILED = "failed"              # this call failed after the SDK's retries (429, 5xx): an unscored item
REJECTED = "rejected"          # this call cannot be answered (longer than the judge's context): an unscored item
REFUSED = "refused"            # the credentials were refused (401/403): stop the run
INVALID = "invalid"            # the request is wrong for every call (400, 404): stop the run
UNSTRUCTURED = "unstructured"  # the endpoint refuses structured output: ask again without it
TIMEOUT = "timeout"            # every attempt timed out: stop the run, naming the endpoint
UNREACHABLE = "unreachable"    # the connection failed even after retries: stop the run


@dataclass(frozen=True)
class Fault:
    """An error's meaning for the run: one of the kinds above, and the provider's message (unredacted:
    the wrapper scrubs keys from it before it is shown or stored)."""

    kind: str
    message: str = ""


@dataclass(frozen=True)
class Completion:
    """One reply: its text and the tokens billed for it."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class Unreadable(Exception):
    """A reply that is not one (HTTP 200 whose body is an error, broken JSON, no text): the wrapper retries it."""


class Provider(Protocol):
    """One judge model behind one endpoint; `ProviderJudge` drives it for every call of a run."""

    judge: str              # the judge as the user named it, e.g. "anthropic:claude-sonnet-4-5"
    model: str
    endpoint: str | None    # part of every cache key: the base URL (None: the provider's default) or model path
    where: str              # what error messages name: the URL or path the calls go to
    secret: str             # the credential, scrubbed from every text; "" when there is none
    sampling: dict          # decoding settings, part of every cache key
    price: tuple[float, float] | None  # USD per million (input, output) tokens; None when unknown
    structured: bool        # whether it asks for the verdict's JSON schema (it may turn this off on a refusal)
    batched: bool           # True: it batches calls itself (vLLM), so every call may be in flight at once
    requests: int           # requests sent for judge calls, retries included

    async def check(self) -> None:
        """A cheap request that proves the endpoint is there and takes the key; raise the SDK's error."""

    async def complete(self, messages: list[dict], structured: bool) -> Completion:
        """One conversation in, one reply out; raise Unreadable for a body that is no reply, else the SDK's
        error after its retries."""

    def classify(self, error: BaseException) -> Fault | None:
        """What `error` means for the run; None when it is not the provider's (a bug: it propagates)."""

    async def aclose(self) -> None:
        """Release connections or the engine."""


# ---------------------------------------------------------------- attempts per call

# Requests sent for the call running in the current task, retries included. The wrapper sets a fresh counter
# before each call; the provider's HTTP hook (which runs in the same task) counts into it, so a message can
# say how many retries a call really made.
_attempts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("judge_attempts", default=None)


def start_counting() -> list[int]:
    counter = [0]
    _attempts.set(counter)
    return counter


def count_attempt() -> None:
    counter = _attempts.get()
    if counter is not None:
        counter[0] += 1


# ---------------------------------------------------------------- shared by the SDK-based providers

def json_body(text: str) -> dict:
    """The JSON object of an HTTP-200 body, or Unreadable when it is not one or carries an error (some proxies
    and servers answer 200 with {"error": ...}; Anthropic's shape is {"type": "error", "error": {...}})."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise Unreadable(f"HTTP 200 whose body is not JSON: {text[:120]!r}") from None
    if not isinstance(data, dict):
        raise Unreadable(f"HTTP 200 whose body is not a reply: {text[:120]!r}")
    if data.get("error") or data.get("type") == "error":
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        raise Unreadable(f"HTTP 200 whose body is an error: {str(message)[:200]}")
    return data


def provider_message(error: BaseException) -> str:
    """The provider's own message from an error body, else the SDK's."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(error, "message", error))


def classify_sdk_error(sdk: Any, error: BaseException, model: str, key_variable: str) -> Fault | None:
    """The meaning of an openai or anthropic SDK error (both SDKs share one exception hierarchy)."""
    if isinstance(error, sdk.APITimeoutError):  # a subclass of APIConnectionError: first
        return Fault(TIMEOUT)
    if isinstance(error, sdk.APIConnectionError):
        return Fault(UNREACHABLE, f"{type(error).__name__}: {error}")
    if isinstance(error, (sdk.AuthenticationError, sdk.PermissionDeniedError)):
        return Fault(REFUSED, f"the judge endpoint refused the credentials ({error.status_code}): "
                              f"{provider_message(error)}; check {key_variable}, or use --judge reference")
    if isinstance(error, sdk.NotFoundError):
        return Fault(INVALID, f"the judge endpoint does not know model {model!r} or its URL (404): "
                              f"{provider_message(error)}; check --judge and --judge-base-url")
    if isinstance(error, sdk.BadRequestError):
        return Fault(INVALID, f"the judge endpoint rejected the request (400): {provider_message(error)}; "
                              f"fix what it names, or choose another --judge")
    if isinstance(error, sdk.APIStatusError):  # 429, 5xx, 529 (overloaded) once the SDK's retries are spent
        return Fault(FAILED, f"HTTP {error.status_code}: {provider_message(error)}")
    return None


class ScaledBackoff:
    """Mixed into an openai or anthropic client class: the SDK's own backoff between retries (0.5 s doubling,
    at most 8 s) times `backoff_scale`, except where the server said how long to wait (Retry-After).

    Tests set a tiny scale so faults cost milliseconds; the retry logic itself stays the SDK's.
    """

    backoff_scale = 1.0

    def _calculate_retry_timeout(self, remaining_retries, options, response_headers=None):  # the SDK's hook
        wait = super()._calculate_retry_timeout(remaining_retries, options, response_headers)  # type: ignore[misc]
        if response_headers is not None and self._parse_retry_after_header(response_headers) is not None:  # type: ignore[attr-defined]
            return wait
        return wait * self.backoff_scale


# ---------------------------------------------------------------- the SDK-based providers' set-up

NO_KEY = "not-needed"       # sent to compatible servers that need no key (e.g. a local vLLM without --api-key)
SDK_FIRST_BACKOFF_S = 0.5   # the SDKs' first wait between retries, which `backoff_scale` scales


def sdk_provider_setup(provider, client_class, sdk: Any, *, judge: str, model: str, options,
                       base_url: str | None, key_variable: str, missing_key: str) -> None:
    """What the openai: and anthropic: providers set up alike: the API key from `key_variable` (none needed
    with a base URL; without either, UserError `missing_key`), their names, price and secret, the request
    count, and the SDK client whose HTTP requests call `provider._count`."""
    api_key = os.environ.get(key_variable, "")
    if not api_key:
        if base_url is None:
            raise UserError(missing_key)
        api_key = NO_KEY
    provider.judge, provider.model, provider.endpoint = judge, model, base_url
    provider.price = priced(model, options.prices, options.max_cost)
    provider.secret = "" if api_key == NO_KEY else api_key
    provider.requests = 0
    provider._client = client_class(api_key=api_key, base_url=base_url, timeout=options.timeout,
                                    max_retries=options.max_retries,
                                    http_client=sdk.DefaultAsyncHttpxClient(event_hooks={"request": [provider._count]}))
    provider._client.backoff_scale = options.retry_backoff / SDK_FIRST_BACKOFF_S
    provider.where = str(provider._client.base_url)
