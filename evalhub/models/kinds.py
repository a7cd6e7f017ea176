"""What a model argument is: a LoRA adapter folder (and the base it names), a full model folder, a model hub
id, or a name served by an OpenAI-compatible server. Decided from the files alone, before anything loads."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError

# "org/name" or "name": what a model hub id looks like, as opposed to a local path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class ModelInfo:
    """One model argument. `kind` is 'adapter' (a folder with adapter_config.json), 'full' (a folder with
    config.json, or a hub id: `hub` is then true) or 'served' (a name on an OpenAI-compatible server).

    For an adapter, `adapter_base` is its `base_model_name_or_path`, `rank` its LoRA rank and
    `target_modules` the module names it adapts (None when the config names them by pattern).
    """

    path: str
    kind: str
    hub: bool = False
    adapter_base: str | None = None
    rank: int | None = None
    target_modules: tuple[str, ...] | None = None


def inspect_model(argument: str | Path, served: bool = False) -> ModelInfo:
    """Classify a model argument, or raise UserError naming the fix. `served`: it is a served model name."""
    text = str(argument)
    if served:
        if not text.strip():
            raise UserError("empty model name; pass the name the server serves the model as")
        return ModelInfo(path=text, kind="served")
    local = Path(text).expanduser()
    if (local / ADAPTER_CONFIG).is_file():
        return _adapter(local)
    if (local / "config.json").is_file():
        return ModelInfo(path=str(local), kind="full")
    if local.exists():
        raise UserError(f"{local}: neither adapter_config.json nor config.json found; pass a model folder or a "
                        "LoRA adapter folder")
    if text.startswith((".", "/", "~")) or not _HUB_ID.match(text):
        raise UserError(f"{text}: no such model folder; pass an existing model or LoRA adapter folder, or a model "
                        "hub id such as org/name")
    return ModelInfo(path=text, kind="full", hub=True)  # transformers and vLLM resolve (and cache) it


def _adapter(folder: Path) -> ModelInfo:
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{folder / ADAPTER_CONFIG}: unreadable ({error}); re-save the adapter") from None
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"{folder}: {ADAPTER_WEIGHTS} is missing; evalhub loads only safetensors adapters")
    targets = config.get("target_modules")
    return ModelInfo(path=str(folder), kind="adapter", adapter_base=config.get("base_model_name_or_path"),
                     rank=config.get("r"), target_modules=tuple(sorted(targets)) if isinstance(targets, list) else None)


def same_base(recorded: str, base: str) -> bool:
    """Whether the base an adapter recorded at training time is `base`: the same text, the same folder, or a hub
    id ("org/name") recorded at training time and a local copy of that model with the same folder name."""
    if recorded == base:
        return True
    recorded_path, base_path = Path(recorded).expanduser(), Path(base).expanduser()
    if recorded_path.exists() and base_path.exists():
        return recorded_path.resolve() == base_path.resolve()
    return recorded_path.name == base_path.name
