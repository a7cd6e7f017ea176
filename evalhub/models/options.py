"""How weights are loaded, whoever loads them (generation, perplexity, lm-eval's models)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadOptions:
    """Loading settings shared by the vLLM engine and transformers. None means the library's own default."""

    dtype: str = "auto"  # 'auto': the checkpoint's own dtype, on both vLLM and transformers
    max_model_len: int | None = None  # default: the model's own context length
    seed: int = 0  # the vLLM engine's seed
    load_in_4bit: bool = False  # NF4 through bitsandbytes
    # vLLM only: parallelism and memory.
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None  # "ray" across nodes, "mp" on one node
    gpu_memory_utilization: float | None = None  # on the CPU build: the share of RAM reserved
    kv_cache_gib: float | None = None  # an explicit KV-cache size instead of a memory share
    enforce_eager: bool = False  # skip graph compilation: starts faster, generates slower
    max_lora_rank: int | None = None  # default: the adapters' largest rank, rounded up to one vLLM accepts
