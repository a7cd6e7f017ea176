"""What every generation backend offers, and the options they share.

A backend is a module (`hf`, `vllm`, `openai`) with two functions:

    generate(plans, items, settings, options) -> {role: {item_id: Generation}}
    score(plans, windows, options) -> {role: [log-likelihood of each window's scored tokens]}

`plans` say which weights to load and which passes (base, tuned) run on them, so a LoRA adapter shares its
base's weights (one vLLM engine, one transformers model) and a full tuned model gets its own.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from evalhub.records import DecodingSettings, GoldenItem, Generation


def _api_key_from_env() -> str | None:
    return os.environ.get("OPENAI_API_KEY")


@dataclass(frozen=True)
class BackendOptions:
    """How backends load and call models. Every field has a default that works on this kind of machine."""

    # openai backend: one or more OpenAI-compatible base URLs (replicas, used round-robin).
    base_urls: tuple[str, ...] = ()
    # Read from OPENAI_API_KEY; kept out of repr() and to_dict() so it is never printed or stored.
    api_key: str | None = field(default_factory=_api_key_from_env, repr=False, compare=False)
    concurrency: int = 8
    max_retries: int = 5
    request_timeout_s: float = 300.0
    # vllm backend: parallelism and memory; None means vLLM's own default.
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None  # "ray" across nodes, "mp" on one node
    gpu_memory_utilization: float | None = None  # on CPU vLLM reads it as the share of RAM reserved; 0.3 there
    kv_cache_gib: float | None = None  # an explicit KV-cache size instead of a memory share
    enforce_eager: bool = False  # skip graph compilation: starts faster, generates slower
    max_lora_rank: int | None = None  # default: the adapter's rank, rounded up to a size vLLM accepts
    # both local backends
    max_model_len: int | None = None  # default: the model's own context length
    dtype: str = "auto"
    # hf backend
    load_in_4bit: bool = False
    batch_size: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_urls", tuple(self.base_urls or ()))  # a list or None from JSON is fine

    def to_dict(self) -> dict:
        """The options as stored with a run: everything except the API key."""
        settings = asdict(self)
        settings.pop("api_key")
        settings["base_urls"] = list(self.base_urls)
        return settings


@dataclass(frozen=True)
class Pass:
    """One role's pass over the prompts: 'base' or 'tuned', with a LoRA adapter folder or without."""

    role: str
    adapter: str | None = None


@dataclass(frozen=True)
class EnginePlan:
    """One set of weights to load (a local folder, a hub id, or a served name) and the passes run on it."""

    weights: str
    passes: tuple[Pass, ...]

    @property
    def adapters(self) -> list[str]:
        return [p.adapter for p in self.passes if p.adapter]


@dataclass(frozen=True)
class Window:
    """A stretch of tokens fed to the model; the last `scored` of them are the ones whose log-likelihood counts."""

    tokens: tuple[int, ...]
    scored: int


class Backend(Protocol):
    def generate(self, plans: Sequence[EnginePlan], items: Sequence[GoldenItem], settings: DecodingSettings,
                 options: BackendOptions) -> dict[str, dict[str, Generation]]: ...

    def score(self, plans: Sequence[EnginePlan], windows: dict[str, list[Window]],
              options: BackendOptions) -> dict[str, list[float]]: ...
