"""The judge interface judge_pairs drives, and the registry that turns a judge name into one.

A judge name is `PREFIX:NAME` (`openai:gpt-4.1`, `anthropic:claude-sonnet-4-5`, `vllm:/models/judge`),
`rm:PATH` (a reward model that scores answers, _reward.py) or `reference`. Each prefix is registered with a small loader that imports its provider only when that judge
is asked for, so choosing the reference judge never imports an SDK or vLLM (as inspect_ai's @modelapi).
A new provider is one module with a class following _provider.Provider, and three lines here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from evalhub.errors import UserError
from evalhub.judge._protocol import CallOutcome, PairRequest

if TYPE_CHECKING:
    from evalhub.judge._options import JudgeOptions


class Judge(Protocol):
    """What judge_pairs needs from a judge, LLM or not."""

    judge: str
    structured: bool                   # whether replies are constrained to the verdict's JSON schema
    stop_reason: UserError | None      # set when the run must stop; judge_pairs raises it at the end
    cache_hits: int                    # replies taken from the cache

    @property
    def calls(self) -> int:
        """Requests sent to the judge, retries included."""

    def in_flight(self, concurrency: int) -> int | None:
        """How many calls may be in flight at once (None: all of them)."""

    async def check_reachable(self, requests: list[PairRequest], force: bool = False) -> None:
        """Raise UserError if the judge cannot answer the calls the cache cannot (force: check regardless)."""

    async def judge_pair(self, request: PairRequest) -> CallOutcome:
        """One ordered pair."""

    async def aclose(self) -> None:
        """Release connections or the engine, inside the event loop."""

    def close(self) -> None:
        """Release the cache, after the event loop."""


# prefix -> a loader returning the provider class, called with (judge, name, options)
_PROVIDERS: dict[str, Callable[[], type]] = {}


def provider(prefix: str) -> Callable[[Callable[[], type]], Callable[[], type]]:
    """Register the loader of the provider that serves judges named `prefix:NAME`."""
    def register(loader: Callable[[], type]) -> Callable[[], type]:
        _PROVIDERS[prefix] = loader
        return loader
    return register


@provider("openai")
def _openai() -> type:
    from evalhub.judge._openai import OpenAIProvider

    return OpenAIProvider


@provider("anthropic")
def _anthropic() -> type:
    from evalhub.judge._anthropic import AnthropicProvider

    return AnthropicProvider


@provider("vllm")
def _vllm() -> type:
    from evalhub.judge._vllm import VLLMProvider

    return VLLMProvider


def known_judges() -> str:
    """The judge forms, for error messages."""
    forms = {"openai": "openai:MODEL", "anthropic": "anthropic:MODEL", "vllm": "vllm:PATH"}
    return (", ".join(f"--judge {forms.get(prefix, prefix + ':NAME')}" for prefix in _PROVIDERS)
            + ", --judge rm:PATH (a reward model) or --judge reference")


def make_judge(judge: str, options: "JudgeOptions", references: Sequence[str]) -> Judge:
    """The judge named `judge`, asking and read by the protocol `options.protocol`, or UserError naming the fix
    (unknown name or protocol, no key, no price for --max-cost)."""
    from dataclasses import replace

    from evalhub.judge._cache import ReplyCache, default_cache_path
    from evalhub.judge._cost import Budget
    from evalhub.judge._protocol_file import load_protocol
    from evalhub.judge._wrapper import ProviderJudge

    protocol = load_protocol(options.protocol)
    if options.max_completion_tokens is None:  # the protocol's own reply budget
        options = replace(options, max_completion_tokens=protocol.spec.max_completion_tokens)

    if judge == "reference":
        from evalhub.judge._reference import ReferenceJudge

        if not options.use_reference:
            raise UserError("the reference judge grades by similarity to the ideal answer: keep the reference on, "
                            "or use an LLM judge such as --judge openai:MODEL")
        return ReferenceJudge(references, protocol)
    if judge.startswith("rm:"):  # a reward model scores answers, not pairs: its own small judge
        from evalhub.judge._reward import RewardModelJudge

        return RewardModelJudge(judge, options.rm_tie_margin)
    prefix, colon, name = judge.partition(":")
    if not colon or prefix not in _PROVIDERS or not name.strip():
        raise UserError(f"unknown judge {judge!r}; use {known_judges()}")
    provider_class = _PROVIDERS[prefix]()
    made = provider_class(judge, name.strip(), options)  # checks its key and price before anything is opened
    # The protocol's verdict schema, where it has one: a free-text protocol (arena-hard) asks for none.
    made.response_format = protocol.response_format
    made.structured = made.structured and protocol.response_format is not None
    cache = ReplyCache(Path(options.cache_path) if options.cache_path else default_cache_path())
    return ProviderJudge(made, cache, Budget(options.max_cost, made.price, options.max_completion_tokens),
                         reasks=options.reasks, max_retries=options.max_retries, timeout=options.timeout,
                         max_retry_seconds=options.max_retry_seconds, retry_backoff=options.retry_backoff,
                         protocol=protocol)
