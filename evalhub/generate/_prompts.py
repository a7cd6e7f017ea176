"""Prompt token ids and answer text, shared by the local backends so hf and vLLM see and return the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from evalhub.errors import UserError
from evalhub.records import DecodingSettings, GoldenItem, Generation


@dataclass(frozen=True)
class EncodedPrompts:
    """Token ids of the prompts that fit the context, and a failed Generation for each one that does not."""

    ids: dict[str, list[int]]
    too_long: dict[str, Generation]


def encode_prompts(tokenizer, items: Sequence[GoldenItem], settings: DecodingSettings, context: int) -> EncodedPrompts:
    """Encode each item's prompt (through the chat template when settings say so) and set aside, with a
    reason, every prompt that leaves no room for max_new_tokens within the context: the others still run."""
    if settings.chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"{tokenizer.name_or_path}: the tokenizer has no chat template; "
                        "pass --no-chat-template to send raw prompts")
    ids: dict[str, list[int]] = {}
    too_long: dict[str, Generation] = {}
    for item in items:
        if settings.chat_template:
            encoded = tokenizer.apply_chat_template([{"role": "user", "content": item.prompt}],
                                                    add_generation_prompt=True, tokenize=True, return_dict=True)
            tokens = list(encoded["input_ids"])
        else:
            tokens = tokenizer(item.prompt).input_ids
        if len(tokens) + settings.max_new_tokens > context:
            too_long[item.id] = Generation(
                item_id=item.id, prompt=item.prompt, output=None, status="failed",
                reason=f"prompt is {len(tokens)} tokens; with max_new_tokens={settings.max_new_tokens} it exceeds "
                       f"the context of {context} tokens")
        else:
            ids[item.id] = tokens
    return EncodedPrompts(ids=ids, too_long=too_long)


def answer_text(tokenizer, new_tokens: Sequence[int], stop: Sequence[str]) -> str:
    """Decode generated tokens (special tokens dropped) and cut at the first stop string, which is left out."""
    text = tokenizer.decode(list(new_tokens), skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text
