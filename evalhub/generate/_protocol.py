"""What every generation backend offers, and the options they share.

A backend is a module (`hf`, `vllm`, `openai`) with two functions:

    generate(plans, work, settings, options, on_answers) -> None
        work: {role: the items that role still has to answer}; on_answers(role, {item_id: Generation}) is
        called with each batch of answers as it is ready, so a caller can checkpoint them
    score(plans, windows, options) -> {role: [log-likelihood of each window's scored tokens]}

`plans` (from the model layer) say which weights to load and which passes (base, tuned) run on them, so a
LoRA adapter shares its base's weights (one vLLM engine, one transformers model) and a full tuned model gets
its own.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from evalhub.models import LoadOptions
from evalhub.models.plan import EnginePlan, Pass
from evalhub.records import DecodingSettings, GoldenItem, Generation

__all__ = ["AnswerSink", "Backend", "BackendOptions", "EnginePlan", "Pass", "Window"]

# Receives (role, {item_id: Generation}) each time a batch of answers is ready.
AnswerSink = Callable[[str, dict[str, Generation]], None]


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

    def load_options(self) -> LoadOptions:
        """What the model layer needs to load the weights."""
        return LoadOptions(dtype=self.dtype, max_model_len=self.max_model_len, load_in_4bit=self.load_in_4bit,
                           tensor_parallel_size=self.tensor_parallel_size,
                           pipeline_parallel_size=self.pipeline_parallel_size,
                           distributed_executor_backend=self.distributed_executor_backend,
                           gpu_memory_utilization=self.gpu_memory_utilization, kv_cache_gib=self.kv_cache_gib,
                           enforce_eager=self.enforce_eager, max_lora_rank=self.max_lora_rank)


@dataclass(frozen=True)
class Window:
    """A stretch of tokens fed to the model; the last `scored` of them are the ones whose log-likelihood counts."""

    tokens: tuple[int, ...]
    scored: int


class Backend(Protocol):
    def generate(self, plans: Sequence[EnginePlan], work: Mapping[str, Sequence[GoldenItem]],
                 settings: DecodingSettings, options: BackendOptions, on_answers: AnswerSink) -> None: ...

    def score(self, plans: Sequence[EnginePlan], windows: dict[str, list[Window]],
              options: BackendOptions) -> dict[str, list[float]]: ...
