"""Answers from the base and the tuned model, through vLLM, transformers, or any OpenAI-compatible server.

    answers = generate_answers(base="path/to/base", tuned="path/to/adapter", items=golden_items,
                               settings=DecodingSettings(), backend="auto", options=BackendOptions())
    answers["base"]["item-7"]   # a Generation; answers["tuned"] likewise ("tuned" absent when tuned is None)

Each call loads its models and releases them when done; `with keep_models_loaded():` keeps the last one
loaded across calls (generation, then perplexity on the same engine), until the block ends.

Backends are modules imported only when chosen, so vLLM's and torch's import cost is paid by those who use them.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Sequence

from evalhub.errors import UserError
from evalhub.generate._models import ModelInfo, inspect_model, plan_engines
from evalhub.generate._protocol import Backend, BackendOptions, EnginePlan, Pass
from evalhub.generate._session import keep_models_loaded, release_models
from evalhub.records import DecodingSettings, GoldenItem, Generation

BACKENDS = {"vllm": "evalhub.generate.vllm", "hf": "evalhub.generate.hf", "openai": "evalhub.generate.openai"}

__all__ = ["BACKENDS", "BackendOptions", "ModelInfo", "generate_answers", "inspect_model", "keep_models_loaded",
           "load_backend", "model_plans", "release_models", "resolve_backend"]


def resolve_backend(backend: str = "auto", options: BackendOptions | None = None) -> str:
    """The backend to use: as named, or for 'auto' the openai backend when base URLs are given, else vLLM
    where it imports, else transformers."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; pass one of auto, {', '.join(BACKENDS)}")
        return backend
    if options is not None and options.base_urls:
        return "openai"
    return "vllm" if _vllm_imports() else "hf"


def generate_answers(base: str | Path, tuned: str | Path | None, items: Sequence[GoldenItem],
                     settings: DecodingSettings = DecodingSettings(), backend: str = "auto",
                     options: BackendOptions | None = None) -> dict[str, dict[str, Generation]]:
    """Every item's answer from each role, keyed by role ('base', 'tuned') and item id, in the items' order.

    `tuned` is a LoRA adapter folder (adapter_config.json), a full model folder or hub id, a served name
    (openai backend), or None for the base alone. An item whose prompt does not fit the context comes back
    as a failed Generation with the reason; the others are answered.
    """
    options = options or BackendOptions()
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise UserError("item ids repeat; every golden item needs a unique id")
    name = resolve_backend(backend, options)
    plans = model_plans(name, base, tuned)
    answers = load_backend(name).generate(plans, items, settings, options)
    return {role: {item_id: answers[role][item_id] for item_id in ids} for role in answers}


def model_plans(backend: str, base: str | Path, tuned: str | Path | None) -> list[EnginePlan]:
    """Which weights each backend loads: served names as they are for openai, local models inspected."""
    tuned = None if tuned is None or str(tuned) == "" else tuned
    if backend != "openai":
        return plan_engines(base, tuned)
    plans = [EnginePlan(str(base), (Pass("base"),))]
    return plans + [EnginePlan(str(tuned), (Pass("tuned"),))] if tuned is not None else plans


def load_backend(name: str) -> Backend:
    return importlib.import_module(BACKENDS[name])  # type: ignore[return-value]


def _vllm_imports() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        importlib.import_module("vllm")
    except Exception:  # a broken install (e.g. mismatched torch) means: use transformers instead
        return False
    return True
