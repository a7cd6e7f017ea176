"""Which weights a comparison loads, and which passes (base, tuned) run on each: an adapter rides on its
base's weights (one vLLM engine, one transformers model), a full model or a served name gets its own."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.models.kinds import ModelInfo, inspect_model, same_base


@dataclass(frozen=True)
class Pass:
    """One role's pass over the prompts: 'base' or 'tuned', with a LoRA adapter folder or without."""

    role: str
    adapter: str | None = None


@dataclass(frozen=True)
class EnginePlan:
    """One set of weights to load (a local folder, a hub id, or a served name) and the passes run on it."""

    weights: str
    passes: tuple[Pass, ...]

    @property
    def adapters(self) -> list[str]:
        return [p.adapter for p in self.passes if p.adapter]


def plan_engines(base: str | Path, tuned: str | Path | None, served: bool = False) -> list[EnginePlan]:
    """The weights to load and the passes on each; `tuned` None (or empty) plans the base alone.

    `served`: both are names on an OpenAI-compatible server, taken as they are.
    """
    tuned = None if tuned is None or str(tuned) == "" else tuned
    base_info = inspect_model(base, served=served)
    if base_info.kind == "adapter":
        raise UserError(f"{base}: the base is a LoRA adapter; pass its base model "
                        f"({base_info.adapter_base or 'see adapter_config.json'}) as base and the adapter as tuned")
    if tuned is None:
        return [EnginePlan(base_info.path, (Pass("base"),))]
    tuned_info = inspect_model(tuned, served=served)
    if tuned_info.kind == "adapter":
        _warn_if_other_base(base_info.path, tuned_info)
        return [EnginePlan(base_info.path, (Pass("base"), Pass("tuned", tuned_info.path)))]
    return [EnginePlan(base_info.path, (Pass("base"),)), EnginePlan(tuned_info.path, (Pass("tuned"),))]


def _warn_if_other_base(base: str, adapter: ModelInfo) -> None:
    # Adapters record the path they were trained from; a moved or re-downloaded base differs only in path,
    # so this is a warning here (`describe_models`, which identifies a stored run's models, refuses it).
    named = adapter.adapter_base
    if named and not same_base(named, base):
        print(f"warning: adapter {adapter.path} was trained on {named}, comparing it with {base}", file=sys.stderr)
