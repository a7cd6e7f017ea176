"""Which weights a run loads, and which passes run on each: every named model (a compare's 'base' and
'tuned', an arena's models) becomes one pass, and passes that ride on the same base weights share one load
(one vLLM engine with each adapter as a LoRA, one transformers model with the adapter switched). A full
model or a served name gets a load of its own.

An adapter's base is the `base_model_name_or_path` of its adapter_config.json, unless `base` (`--base`) says
where that model is now. When the recorded base is another of the run's models (the same folder, or a hub
id and a local copy with the same folder name), the adapter rides on that model's load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from evalhub.errors import UserError
from evalhub.models.kinds import ModelInfo, inspect_model, same_base


@dataclass(frozen=True)
class Pass:
    """One model's pass over the prompts: `role` is its name in the run ('base' or 'tuned' in a compare, its
    label in an arena), with a LoRA adapter folder or without."""

    role: str
    adapter: str | None = None


@dataclass(frozen=True)
class EnginePlan:
    """One set of weights to load (a local folder, a hub id, or a served name) and the passes run on it."""

    weights: str
    passes: tuple[Pass, ...]

    @property
    def adapters(self) -> list[str]:
        """The distinct adapters of the plan's passes, in pass order."""
        return list(dict.fromkeys(p.adapter for p in self.passes if p.adapter))


def plan_models(models: Mapping[str, str | Path], served: bool = False, base: str | Path | None = None
                ) -> list[EnginePlan]:
    """The loads for named models ({name: model argument}), in the order the models are given: adapters of one
    base share a plan with each other and with that base when it is one of the models.

    `served`: the arguments are names on an OpenAI-compatible server, each its own plan, taken as they are.
    `base`: where the adapters' base model is now (`--base`), when it moved since training.
    """
    infos = {name: inspect_model(argument, served=served) for name, argument in models.items()}
    full = [info.path for info in infos.values() if info.kind != "adapter"]
    plans: dict[str, list] = {}
    for name, info in infos.items():
        if info.kind == "adapter":
            weights, one_pass = adapter_base(info, base, full), Pass(name, info.path)
        else:
            weights, one_pass = info.path, Pass(name)
        key = info.path if served else _identity(weights)
        plans.setdefault(key, [weights, []])[1].append(one_pass)
    return [EnginePlan(weights, tuple(passes)) for weights, passes in plans.values()]


def plan_engines(base: str | Path, tuned: str | Path | None, served: bool = False,
                 adapter_base: str | Path | None = None) -> list[EnginePlan]:
    """A comparison's loads: `base` (the baseline) and `tuned` (the candidate; None or empty plans the
    baseline alone), each any kind of model."""
    tuned = None if tuned is None or str(tuned) == "" else tuned
    models = {"base": base} if tuned is None else {"base": base, "tuned": tuned}
    return plan_models(models, served=served, base=adapter_base)


def adapter_base(adapter: ModelInfo, override: str | Path | None = None, models: tuple[str, ...] | list[str] = ()
                 ) -> str:
    """The weights an adapter rides on: `override` (--base) when given; else the run's model that is its
    recorded base; else the recorded base itself, a local folder or a hub id."""
    if override:
        found = inspect_model(override)
        if found.kind == "adapter":
            raise UserError(f"--base {override}: is a LoRA adapter; pass the base model the adapters were trained on")
        return found.path
    recorded = adapter.adapter_base
    if not recorded:
        raise UserError(f"{adapter.path}: adapter_config.json names no base model; pass --base PATH")
    for model in models:
        if same_base(recorded, model):
            return model
    local = Path(recorded).expanduser()
    if (local / "config.json").is_file():
        return str(local)
    if not recorded.startswith((".", "/", "~")) and not local.exists() and "/" in recorded:
        return recorded  # a hub id: transformers and vLLM resolve (and cache) it
    raise UserError(f"the adapter {adapter.path} was trained on {recorded}, which is not a model folder here; "
                    "pass --base PATH where that base model is now")


def _identity(weights: str) -> str:
    local = Path(weights).expanduser()
    return str(local.resolve()) if local.exists() else weights
