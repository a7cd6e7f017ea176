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
            tokens = _chat_tokens(tokenizer, item)
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


def _chat_tokens(tokenizer, item: GoldenItem) -> list[int]:
    """The item's messages (one user turn, or a multi-turn conversation) through the model's chat template."""
    from jinja2 import TemplateError

    try:
        encoded = tokenizer.apply_chat_template(item.chat_messages(), add_generation_prompt=True, tokenize=True,
                                                return_dict=True)
    except TemplateError as error:  # e.g. Gemma's and Mistral's templates refuse a system turn
        raise UserError(f"golden item {item.id}: the chat template of {tokenizer.name_or_path} refuses its messages "
                        f"({error}); drop the turn it names from the item, or pass --no-chat-template") from None
    return list(encoded["input_ids"])


def answer_text(tokenizer, new_tokens: Sequence[int], stop: Sequence[str]) -> str:
    """Decode generated tokens (special tokens dropped) and cut at the first stop string, which is left out."""
    text = tokenizer.decode(list(new_tokens), skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text
