"""Answers from a comparison's two models, or an arena's many, through vLLM, transformers, or any
OpenAI-compatible server.

    answers = generate_answers(base="path/to/base", tuned="path/to/adapter", items=golden_items,
                               settings=DecodingSettings(), backend="auto", options=BackendOptions())
    answers["base"]["item-7"]   # a Generation; answers["tuned"] likewise ("tuned" absent when tuned is None)

Each call loads its models and releases them when done; `with keep_models_loaded():` keeps the last one
loaded across calls (generation, then perplexity on the same engine), until the block ends.

Backends are modules imported only when chosen, so vLLM's and torch's import cost is paid by those who use them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Mapping, Sequence

from evalhub.errors import UserError
from evalhub.generate._protocol import Backend, BackendOptions, EnginePlan
from evalhub.models import ModelInfo, inspect_model, keep_models_loaded, plan_engines, plan_models, release_models
from evalhub.models import resolve_backend as _resolve_backend
from evalhub.records import DecodingSettings, GoldenItem, Generation

BACKENDS = {"vllm": "evalhub.generate.vllm", "hf": "evalhub.generate.hf", "openai": "evalhub.generate.openai"}

__all__ = ["BACKENDS", "BackendOptions", "backend_options", "ModelInfo", "generate_answers", "generate_for_models", "inspect_model",
           "keep_models_loaded",
           "load_backend", "model_plans", "release_models", "resolve_backend"]


def backend_options(settings) -> BackendOptions:
    """The generation layer's BackendOptions from a request's BackendSettings (evalhub.contracts): only the
    fields given there override this layer's defaults."""
    return BackendOptions(**settings.model_dump(exclude_none=True, exclude_defaults=True))


def resolve_backend(backend: str = "auto", options: BackendOptions | None = None) -> str:
    """The backend to use: as named, or for 'auto' the openai backend when base URLs are given, else vLLM
    where it imports, else transformers."""
    return _resolve_backend(backend, served=bool(options is not None and options.base_urls), choices=tuple(BACKENDS))


def generate_answers(base: str | Path, tuned: str | Path | None, items: Sequence[GoldenItem],
                     settings: DecodingSettings = DecodingSettings(), backend: str = "auto",
                     options: BackendOptions | None = None, *,
                     done: Mapping[str, Mapping[str, Generation]] | None = None,
                     on_answers: Callable[[str, dict[str, Generation]], None] | None = None,
                     adapter_base: str | Path | None = None) -> dict[str, dict[str, Generation]]:
    """Every item's answer from the baseline ('base') and the candidate ('tuned'), keyed by role and item id.

    Each is a base model folder, a LoRA adapter folder (on its recorded base, or `adapter_base`), a full
    model folder or hub id, or a served name (openai backend); `tuned` None answers with the baseline alone.
    See `generate_for_models` for resuming (`done`) and checkpointing (`on_answers`).
    """
    tuned = None if tuned is None or str(tuned) == "" else tuned
    models = {"base": base} if tuned is None else {"base": base, "tuned": tuned}
    return generate_for_models(models, items, settings, backend, options, done=done, on_answers=on_answers,
                               adapter_base=adapter_base)


def generate_for_models(models: Mapping[str, str | Path], items: Sequence[GoldenItem],
                        settings: DecodingSettings = DecodingSettings(), backend: str = "auto",
                        options: BackendOptions | None = None, *,
                        done: Mapping[str, Mapping[str, Generation]] | None = None,
                        on_answers: Callable[[str, dict[str, Generation]], None] | None = None,
                        adapter_base: str | Path | None = None) -> dict[str, dict[str, Generation]]:
    """Every item's answer from each named model ({name: model argument}), keyed by name and item id, in the
    items' order. Adapters of one base answer from one load of it (one vLLM engine, all of them batched).

    An item whose prompt does not fit the context comes back as a failed Generation with the reason; the
    others are answered.

    Resuming: `done` holds answers of an earlier attempt (name -> item id -> Generation); those items are
    not asked again for that model, and a load none of whose passes has work left does not happen.
    `on_answers(name, {item_id: Generation})` is called with each batch of new answers as it is ready
    (vLLM: a chunk of prompts; hf: a batch; openai: completed requests), so a caller can checkpoint them and
    a killed run loses at most one batch. The result holds done and new answers alike.
    """
    options = options or BackendOptions()
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise UserError("item ids repeat; every golden item needs a unique id")
    name = resolve_backend(backend, options)
    plans = model_plans(name, models, adapter_base=adapter_base)
    roles = [one_pass.role for plan in plans for one_pass in plan.passes]
    wanted = set(ids)
    answers = {role: {i: g for i, g in (done or {}).get(role, {}).items() if i in wanted} for role in roles}
    work = {role: [item for item in items if item.id not in answers[role]] for role in roles}

    def collect(role: str, batch: dict[str, Generation]) -> None:
        answers[role].update(batch)
        if on_answers is not None:
            on_answers(role, dict(batch))

    # A plan keeps all its passes (so a vLLM engine starts with the same LoRA settings as in a one-shot run);
    # the backend skips a pass with no work, and a plan with none is not loaded at all.
    todo = [plan for plan in plans if any(work[p.role] for p in plan.passes)]
    if todo:
        load_backend(name).generate(todo, work, settings, options, collect)
    missing = {role: len(wanted - set(answers[role])) for role in roles if wanted - set(answers[role])}
    if missing:
        raise RuntimeError(f"the {name} backend left items unanswered: {missing}")
    return {role: {item_id: answers[role][item_id] for item_id in ids} for role in models}


def model_plans(backend: str, models: Mapping[str, str | Path] | str | Path, tuned: str | Path | None = None,
                adapter_base: str | Path | None = None) -> list[EnginePlan]:
    """Which weights each backend loads: served names as they are for openai, local models inspected.
    `models` is {name: model argument}, or a baseline with `tuned` its candidate."""
    if not isinstance(models, Mapping):
        return plan_engines(models, tuned, served=backend == "openai", adapter_base=adapter_base)
    return plan_models(models, served=backend == "openai", base=adapter_base)


def load_backend(name: str) -> Backend:
    return importlib.import_module(BACKENDS[name])  # type: ignore[return-value]
