"""OpenAI-compatible backend: a `vllm serve` deployment (adapters served by name with --lora-modules), an
`evalhub serve`, or a hosted API.

Model names are the names as served. Requests run with bounded concurrency, spread round-robin over one or
more base URLs (replicas of one deployment); the openai SDK retries 429s, 5xxs, timeouts and dropped
connections with exponential backoff (honouring Retry-After). An item whose request still fails, or that the
server rejects (a prompt longer than the context is a 400), fails alone with the server's reason.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Mapping, Sequence

from evalhub.errors import UserError
from evalhub.generate._protocol import AnswerSink, BackendOptions, EnginePlan, Window
from evalhub.records import DecodingSettings, GoldenItem, Generation

START_A_SERVER = "start one with `evalhub serve BASE --adapter NAME=PATH` or pass the names as served"
# Completed answers are handed on (checkpointed) in groups: every this many answers or seconds, whichever
# comes first, and at the end. Per answer would rewrite a checkpoint hundreds of times a minute; at the end
# only, a kill would lose every answer already paid for.
FLUSH_ANSWERS = 32
FLUSH_SECONDS = 10.0


def generate(plans: Sequence[EnginePlan], work: Mapping[str, Sequence[GoldenItem]], settings: DecodingSettings,
             options: BackendOptions, on_answers: AnswerSink) -> None:
    from tqdm import tqdm

    if not options.base_urls:
        raise UserError("the openai backend needs --base-url URL (e.g. http://127.0.0.1:8000/v1)")
    clients = [_client(url, options) for url in options.base_urls]
    names = {one_pass.role: plan.weights for plan in plans for one_pass in plan.passes}
    for url, client in zip(options.base_urls, clients, strict=True):
        _check_served(url, client, sorted(set(names.values())))
    jobs = [(role, item) for role in names for item in work.get(role) or []]
    pending = _Pending(on_answers)
    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency))
    try:
        # Job k goes to replica k mod n: round-robin over the base URLs.
        futures = {pool.submit(_ask, clients[k % len(clients)], names[role], item, settings, options): (role, item.id)
                   for k, (role, item) in enumerate(jobs)}
        for future in tqdm(as_completed(futures), total=len(futures), desc="openai", unit="answer", file=sys.stderr):
            role, item_id = futures[future]
            pending.add(role, item_id, future.result())
    except BaseException:
        # An interrupt (or a refused key) stops here: queued requests are cancelled rather than waited for,
        # and the answers already received are handed on before the exception goes up.
        pool.shutdown(wait=False, cancel_futures=True)
        for client in clients:
            client.close()  # ends the requests still in flight
        if not pending.handing_on:  # not when on_answers itself raised
            pending.flush()
        raise
    pool.shutdown()
    pending.flush()


class _Pending:
    """Answers received but not yet handed on, by role."""

    def __init__(self, on_answers: AnswerSink) -> None:
        self.on_answers = on_answers
        self.by_role: dict[str, dict[str, Generation]] = {}
        self.count = 0
        self.since = time.monotonic()
        self.handing_on = False

    def add(self, role: str, item_id: str, generation: Generation) -> None:
        self.by_role.setdefault(role, {})[item_id] = generation
        self.count += 1
        if self.count >= FLUSH_ANSWERS or time.monotonic() - self.since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        by_role, self.by_role, self.count, self.since = self.by_role, {}, 0, time.monotonic()
        self.handing_on = True
        for role, answers in by_role.items():
            self.on_answers(role, answers)
        self.handing_on = False


def score(plans: Sequence[EnginePlan], windows: dict[str, list[Window]], options: BackendOptions) -> dict[str, list[float]]:
    raise UserError("perplexity needs the model weights; pass --backend hf or --backend vllm")


def _client(url: str, options: BackendOptions):
    from openai import OpenAI

    # Local servers take any key; the SDK insists on one.
    return OpenAI(base_url=url, api_key=options.api_key or "EMPTY", max_retries=options.max_retries,
                  timeout=options.request_timeout_s)


def _check_served(url: str, client, names: list[str]) -> None:
    """Fail before spending anything when a model is not served (or the server is unreachable)."""
    import openai

    try:
        served = {model.id for model in client.models.list()}
    except openai.NotFoundError:
        return  # a server without GET /models: its answers will tell
    except openai.AuthenticationError:
        raise UserError(f"{url} rejected the API key; set OPENAI_API_KEY to a valid key") from None
    except openai.APIConnectionError:
        raise UserError(f"cannot reach {url}; {START_A_SERVER}, or fix --base-url") from None
    except openai.APIStatusError as error:  # a 5xx (or 429) that outlasted the SDK's retries: the server's fault
        raise UserError(f"{url} answered HTTP {error.status_code} ({_one_line(error)}) to GET /models; "
                        f"check the server's log, or fix --base-url") from None
    missing = [name for name in names if name not in served]
    if missing:
        raise UserError(f"{url} does not serve {', '.join(missing)} (it serves: {', '.join(sorted(served)) or 'nothing'}); "
                        f"{START_A_SERVER}")


def _ask(client, model: str, item: GoldenItem, settings: DecodingSettings, options: BackendOptions) -> Generation:
    import openai

    common = dict(model=model, temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed,
                  stop=list(settings.stop) or None)
    try:
        if settings.chat_template:
            reply = client.chat.completions.create(messages=item.chat_messages(),
                                                   max_completion_tokens=settings.max_new_tokens, **common)
            text = reply.choices[0].message.content or ""
        else:
            reply = client.completions.create(prompt=item.prompt, max_tokens=settings.max_new_tokens, **common)
            text = reply.choices[0].text
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        raise UserError(f"the server refused the request ({_one_line(error)}); set OPENAI_API_KEY to a valid key") from None
    except openai.BadRequestError as error:
        return _failed(item, f"rejected by the server: {_one_line(error)}")
    except openai.APIError as error:
        return _failed(item, f"failed after {options.max_retries} retries: {_one_line(error)}")
    return Generation(item_id=item.id, prompt=item.prompt, output=text)


def _failed(item: GoldenItem, reason: str) -> Generation:
    return Generation(item_id=item.id, prompt=item.prompt, output=None, status="failed", reason=reason)


def _one_line(error: Exception) -> str:
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message or error).split())[:500]
