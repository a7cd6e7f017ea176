"""Which library runs the model: vLLM, transformers ('hf'), or an OpenAI-compatible server ('openai')."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Sequence

from evalhub.errors import UserError

BACKEND_NAMES = ("vllm", "hf", "openai")


def resolve_backend(requested: str = "auto", served: bool = False, vllm_on_cpu: bool = True,
                    choices: Sequence[str] = BACKEND_NAMES) -> str:
    """The backend named, or for 'auto': openai when the models are served, else vLLM where it imports (on a
    GPU only, unless `vllm_on_cpu`), else transformers."""
    if requested != "auto":
        if requested not in choices:
            raise UserError(f"unknown backend {requested!r}; pass one of auto, {', '.join(choices)}")
        return requested
    if served and "openai" in choices:
        return "openai"
    if not vllm_on_cpu and not _cuda_available():
        return "hf"
    return "vllm" if vllm_imports() else "hf"


def vllm_imports() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        importlib.import_module("vllm")
    except Exception:  # a broken install (e.g. mismatched torch) means: use transformers instead
        return False
    return True


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
