"""What a model path is (a LoRA adapter or a full model), and which weights a comparison must load."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.generate._protocol import BackendOptions, EnginePlan, Pass

# "org/name" or "name": what a model hub id looks like, as opposed to a local path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Config fields that different architectures use for their context length.
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


@dataclass(frozen=True)
class ModelInfo:
    """A model folder or hub id: `kind` is 'adapter' (adapter_config.json present) or 'full'.

    For an adapter, `adapter_base` is its `base_model_name_or_path`, `rank` its LoRA rank and
    `target_modules` the module names it adapts (None when the config names them by pattern).
    """

    path: str
    kind: str
    adapter_base: str | None = None
    rank: int | None = None
    target_modules: tuple[str, ...] | None = None


def inspect_model(path: str | Path) -> ModelInfo:
    """Tell a LoRA adapter from a full model, and read an adapter's base, or raise UserError naming the fix."""
    text = str(path)
    local = Path(text).expanduser()
    if (local / "adapter_config.json").is_file():
        try:
            config = json.loads((local / "adapter_config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{local / 'adapter_config.json'}: unreadable ({error}); re-save the adapter") from None
        targets = config.get("target_modules")
        return ModelInfo(path=str(local), kind="adapter", adapter_base=config.get("base_model_name_or_path"),
                         rank=config.get("r"),
                         target_modules=tuple(sorted(targets)) if isinstance(targets, list) else None)
    if (local / "config.json").is_file():
        return ModelInfo(path=str(local), kind="full")
    if local.exists():
        raise UserError(f"{local}: neither adapter_config.json nor config.json found; pass a model or adapter folder")
    if text.startswith((".", "/", "~")) or not _HUB_ID.match(text):
        raise UserError(f"{text}: no such model folder; pass an existing folder or a model hub id such as org/name")
    return ModelInfo(path=text, kind="full")  # a hub id: transformers and vLLM resolve (and cache) it


def plan_engines(base: str | Path, tuned: str | Path | None) -> list[EnginePlan]:
    """The weights to load and the passes on each: an adapter rides on its base's weights, a full model
    gets weights of its own."""
    base_info = inspect_model(base)
    if base_info.kind == "adapter":
        raise UserError(f"{base}: the base is a LoRA adapter; pass its base model "
                        f"({base_info.adapter_base or 'see adapter_config.json'}) as base and the adapter as tuned")
    if tuned is None:
        return [EnginePlan(base_info.path, (Pass("base"),))]
    tuned_info = inspect_model(tuned)
    if tuned_info.kind == "adapter":
        _warn_if_other_base(base_info.path, tuned_info)
        return [EnginePlan(base_info.path, (Pass("base"), Pass("tuned", tuned_info.path)))]
    return [EnginePlan(base_info.path, (Pass("base"),)), EnginePlan(tuned_info.path, (Pass("tuned"),))]


def _warn_if_other_base(base: str, adapter: ModelInfo) -> None:
    # Adapters record the path they were trained from; a moved or re-downloaded base differs only in path,
    # so this is a warning, not an error.
    named = adapter.adapter_base
    if named and Path(named).expanduser().resolve() != Path(base).expanduser().resolve() and named != base:
        print(f"warning: adapter {adapter.path} was trained on {named}, comparing it with {base}", file=sys.stderr)


def context_length(weights: str, options: BackendOptions) -> int:
    """Tokens the model attends over: --max-model-len when given, else the model config's context length."""
    if options.max_model_len:
        return options.max_model_len
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(weights)
    config = getattr(config, "text_config", None) or config
    for name in _CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise UserError(f"{weights}: the config states no context length; pass --max-model-len")


def load_tokenizer(weights: str):
    """The tokenizer both local backends encode prompts with, so hf and vLLM see the same token ids."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(weights)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
