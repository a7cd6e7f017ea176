"""transformers + peft backend: runs wherever PyTorch does, with or without vLLM.

Prompts go in batches with left padding (so every answer starts right after its prompt), longest first so a
batch holds prompts of similar length. LoRA adapters are loaded unmerged on one copy of their base: each
adapter's pass switches to it (`set_adapter`), a base pass switches them off (`disable_adapter()`), so one
copy of the base weights serves every model of the plan, as with vLLM.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

from evalhub.generate._prompts import answer_text, encode_prompts
from evalhub.generate._protocol import AnswerSink, BackendOptions, EnginePlan, Window
from evalhub.models import context_length, load_causal_lm, load_tokenizer, loaded, use_adapter
from evalhub.records import DecodingSettings, GoldenItem, Generation


def generate(plans: Sequence[EnginePlan], work: Mapping[str, Sequence[GoldenItem]], settings: DecodingSettings,
             options: BackendOptions, on_answers: AnswerSink) -> None:
    for plan in plans:
        with _model(plan, options) as (model, tokenizer):
            context = context_length(plan.weights, options.max_model_len)
            for one_pass in plan.passes:
                items = work.get(one_pass.role) or []
                if not items:
                    continue
                prompt_of = {item.id: item.prompt for item in items}
                prompts = encode_prompts(tokenizer, items, settings, context)
                if prompts.too_long:
                    on_answers(one_pass.role, dict(prompts.too_long))
                with use_adapter(model, plan.adapters, one_pass.adapter):
                    for texts in _generate_batches(model, tokenizer, prompts.ids, settings, options.batch_size,
                                                   one_pass.role):
                        on_answers(one_pass.role, {i: Generation(item_id=i, prompt=prompt_of[i], output=text)
                                                   for i, text in texts.items()})


def score(plans: Sequence[EnginePlan], windows: dict[str, list[Window]], options: BackendOptions) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for plan in plans:
        with _model(plan, options) as (model, _tokenizer):
            for one_pass in plan.passes:
                with use_adapter(model, plan.adapters, one_pass.adapter):
                    results[one_pass.role] = _score_pass(model, windows[one_pass.role], options.batch_size, one_pass.role)
    return results


def _generate_batches(model, tokenizer, prompts: dict[str, list[int]], settings: DecodingSettings, batch_size: int,
                      role: str) -> Iterator[dict[str, str]]:
    """Answer the prompts batch by batch, yielding each batch's answer texts by item id as soon as it is done."""
    import torch
    from tqdm import tqdm

    config = _generation_config(model, tokenizer, settings)
    stop_ids = set(_as_list(config.eos_token_id))
    order = sorted(prompts, key=lambda item_id: len(prompts[item_id]), reverse=True)
    torch.manual_seed(settings.seed)
    for start in tqdm(range(0, len(order), batch_size), desc=f"hf {role}", unit="batch", file=sys.stderr):
        batch_ids = order[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [prompts[i] for i in batch_ids]}, padding=True, return_tensors="pt")
        batch = batch.to(model.device)
        with torch.inference_mode():
            generated = model.generate(**batch, generation_config=config,
                                       tokenizer=tokenizer if settings.stop else None)
        texts = {}
        for item_id, row in zip(batch_ids, generated[:, batch["input_ids"].shape[1]:].tolist(), strict=True):
            end = next((k for k, token in enumerate(row) if token in stop_ids), len(row))
            texts[item_id] = answer_text(tokenizer, row[:end], settings.stop)
        yield texts


def _generation_config(model, tokenizer, settings: DecodingSettings):
    from transformers import GenerationConfig

    sampling = settings.temperature > 0
    eos = _as_list(model.generation_config.eos_token_id) or [tokenizer.eos_token_id]
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens, do_sample=sampling,
        # vLLM and OpenAI APIs apply no top-k unless asked; transformers would apply 50 when sampling.
        temperature=settings.temperature if sampling else None, top_p=settings.top_p if sampling else None,
        top_k=0 if sampling else None,
        eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, stop_strings=list(settings.stop) or None,
    )


def _score_pass(model, windows: list[Window], batch_size: int, role: str) -> list[float]:
    """Log-likelihood of each window's scored tokens. Left padding puts every window's scored tokens at the
    end of its row, so only those positions' logits are computed (logits_to_keep)."""
    import torch
    from tqdm import tqdm

    totals = [0.0] * len(windows)
    order = sorted(range(len(windows)), key=lambda k: len(windows[k].tokens), reverse=True)
    for start in tqdm(range(0, len(order), batch_size), desc=f"perplexity {role}", unit="batch", file=sys.stderr):
        chunk = [windows[k] for k in order[start:start + batch_size]]
        width = max(len(w.tokens) for w in chunk) - 1
        inputs = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, window in enumerate(chunk):
            fed = window.tokens[:-1]  # the last token is only ever a target
            inputs[row, width - len(fed):] = torch.tensor(fed)
            mask[row, width - len(fed):] = 1
        keep = max(w.scored for w in chunk)
        padded = {"attention_mask": mask.to(model.device),
                  "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(model.device)}
        with torch.inference_mode():
            # Windows of one length (most of them: sorted by length) need no mask, which lets attention take
            # its faster purely causal path.
            logits = model(input_ids=inputs.to(model.device), logits_to_keep=keep,
                           **(padded if int(mask.sum()) < mask.numel() else {})).logits
        for row, window in enumerate(chunk):
            logprobs = torch.log_softmax(logits[row, keep - window.scored:].float(), dim=-1)
            targets = torch.tensor(window.tokens[-window.scored:], device=logprobs.device)
            picked = logprobs.gather(-1, targets[:, None]).squeeze(-1)
            totals[order[start + row]] = float(picked.double().sum())
    return totals


@contextmanager
def _model(plan: EnginePlan, options: BackendOptions) -> Iterator[tuple]:
    key = ("hf", plan.weights, tuple(plan.adapters), options.dtype, options.load_in_4bit)
    with loaded(key, lambda: _load(plan, options), lambda pair: None) as pair:
        yield pair


def _load(plan: EnginePlan, options: BackendOptions) -> tuple:
    model = load_causal_lm(plan.weights, dtype=options.dtype, load_in_4bit=options.load_in_4bit,
                           adapter=plan.adapters)
    model.eval()
    tokenizer = load_tokenizer(plan.weights)
    tokenizer.padding_side = "left"
    return model, tokenizer


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
