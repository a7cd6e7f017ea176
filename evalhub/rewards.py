"""Rewards for RL (`evalhub train grpo|rloo --reward SPEC`): a trained reward model, or a function in Python.

SPEC is
  rm:PATH                   a reward model from `evalhub train rm`: each completion scored after its prompt;
  python:module:function    a verifiable reward: `function(prompts, completions, **columns) -> list[float]`,
                            where prompts and completions are plain text (the last message's content for chat
                            data) and columns are the prompt file's other fields, one value per completion
                            (a golden item's ideal answer is `output`); None for a completion it cannot score.

Shipped verifiable rewards: `python:evalhub.rewards:exact_match` (1 when the completion is the reference
answer, whitespace aside, else 0) and `python:evalhub.rewards:contains_reference` (1 when the reference
occurs in the completion). The reference is the row's `reference`, `answer` or `output` field, the first
there is.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Callable, Sequence

from evalhub.errors import UserError

REFERENCE_FIELDS = ("reference", "answer", "output")
SPEC_FORMS = "rm:PATH (a reward model from `evalhub train rm`) or python:module:function"


def text_of(value: Any) -> str:
    """A prompt or completion as text: a string as it is, chat messages as their last message's content."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return str(value)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _references(count: int, columns: dict) -> list[str | None]:
    for name in REFERENCE_FIELDS:
        if name in columns and columns[name] is not None:
            return [None if v is None else str(v) for v in columns[name]]
    raise UserError(f"the reward needs a reference answer: give each prompt a field among {list(REFERENCE_FIELDS)}")


def exact_match(prompts: Sequence[str], completions: Sequence[str], **columns) -> list[float | None]:
    """1.0 where the completion is the reference answer (runs of whitespace and the ends aside), else 0.0."""
    references = _references(len(completions), columns)
    return [None if ref is None else float(_normalise(text_of(c)) == _normalise(ref))
            for c, ref in zip(completions, references)]


def contains_reference(prompts: Sequence[str], completions: Sequence[str], **columns) -> list[float | None]:
    """1.0 where the reference answer occurs in the completion (whitespace aside), else 0.0."""
    references = _references(len(completions), columns)
    return [None if ref is None else float(_normalise(ref) in _normalise(text_of(c)))
            for c, ref in zip(completions, references)]


def check_reward_spec(spec: str | None) -> str:
    """Check SPEC's form and that what it names exists, without loading a model; UserError naming the fix."""
    if not spec:
        raise UserError(f"no reward given; pass --reward {SPEC_FORMS}")
    kind, colon, rest = spec.partition(":")
    if not colon or not rest.strip() or kind not in ("rm", "python"):
        raise UserError(f"unknown reward {spec!r}; pass --reward {SPEC_FORMS}")
    if kind == "rm":
        from evalhub.models.reward import check_reward_model

        check_reward_model(rest, flag="--reward rm:PATH")
    else:
        _python_function(rest)
    return spec


def _python_function(target: str) -> Callable:
    module_name, colon, function_name = target.rpartition(":")
    if not colon or not module_name or not function_name:
        raise UserError(f"--reward python:{target}: name it as python:module:function (e.g. "
                        "python:evalhub.rewards:exact_match)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"--reward python:{target}: cannot import {module_name} ({error}); put the module on "
                        "PYTHONPATH or install it") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"--reward python:{target}: {module_name} has no function {function_name!r}")
    return function


def make_reward(spec: str) -> Callable:
    """A TRL reward function (`prompts, completions, **columns -> list[float]`) for SPEC. A reward model is loaded
    here, once; a Python function is wrapped so that it sees text, not chat messages."""
    check_reward_spec(spec)
    kind, _, rest = spec.partition(":")
    if kind == "rm":
        from evalhub.models.reward import RewardModel

        model = RewardModel.load(rest, flag="--reward rm:PATH")

        def reward_model(prompts, completions, **_columns) -> list[float]:
            return model.score([(p if isinstance(p, (list, tuple)) else [{"role": "user", "content": p}], text_of(c))
                                for p, c in zip(prompts, completions)])

        reward_model.__name__ = f"rm:{Path(rest).name}"
        return reward_model

    function = _python_function(rest)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(function).parameters.values())

    def verifiable(prompts, completions, **columns) -> list[float | None]:
        texts = [text_of(c) for c in completions]
        prompt_texts = [text_of(p) for p in prompts]
        given = {k: v for k, v in columns.items() if k not in ("trainer_state", "log_extra", "log_metric",
                                                               "completion_ids", "environments")}
        if not accepts_any:
            names = set(inspect.signature(function).parameters)
            given = {k: v for k, v in given.items() if k in names}
        rewards = list(function(prompt_texts, texts, **given))
        if len(rewards) != len(texts):
            raise UserError(f"--reward {spec}: returned {len(rewards)} rewards for {len(texts)} completions; "
                            "return one float (or None) per completion")
        return [None if r is None else float(r) for r in rewards]

    verifiable.__name__ = rest.rpartition(":")[2]
    return verifiable
