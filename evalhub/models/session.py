"""Loaded models are released after each call, unless a caller asks to keep the last one loaded.

Starting a vLLM engine costs tens of seconds, so a comparison that generates and then measures perplexity on
the same base wants one engine for both. Keeping it loaded by default would hold GPU memory that the next
stage (lm-eval loads its own copy) needs, so reuse is explicit:

    with keep_models_loaded():
        answers = generate_answers(...)
        perplexity = measure_perplexity(...)   # same weights and options: the same engine

One model at a time: loading another releases the kept one first, so two never sit in memory together.
"""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator

_kept: dict[str, Any] = {"key": None, "model": None, "close": None}
_keep_depth = 0


@contextmanager
def keep_models_loaded() -> Iterator[None]:
    """Within this block, the most recently loaded model (one at a time) is reused by later calls."""
    global _keep_depth
    _keep_depth += 1
    try:
        yield
    finally:
        _keep_depth -= 1
        if _keep_depth == 0:
            release_models()


def kept_model() -> Any:
    """The model held loaded now, or None."""
    return _kept["model"]


def release_models() -> None:
    """Close the kept model, if any, and free its memory."""
    close, model = _kept["close"], _kept["model"]
    _kept.update(key=None, model=None, close=None)
    if close is None:
        return  # nothing was held, so there is nothing to free (a full collection takes half a second)
    close(model)
    del model
    free_memory()


def free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # only if something loaded it: releasing must not import it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # hand the freed GPU memory back, for the next stage's own model


@contextmanager
def loaded(key: Hashable, load: Callable[[], Any], close: Callable[[Any], None]) -> Iterator[Any]:
    """The model for `key`: the kept one when it matches, else a fresh load (releasing the kept one first).
    Released on exit unless keep_models_loaded() is active, and always on an error or interrupt: a vLLM
    engine stopped mid-call still holds the interrupted requests, so it is not reused."""
    if _kept["key"] != key:
        release_models()
        model = load()
        _kept.update(key=key, model=model, close=close)
    try:
        yield _kept["model"]
    except BaseException:
        release_models()
        raise
    if _keep_depth == 0:
        release_models()
