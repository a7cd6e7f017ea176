"""Command-line options built from the typed contracts, so each flag is declared once: on its contract field
(evalhub/contracts.py `flag(default, "--name", "help")`), not again as a typer option and in every command's
signature.

    @app.command()
    @contract_options(decoding=DecodingSettings, thresholds=GateThresholds)
    def compare(base: str, ..., decoding: dict, thresholds: dict) -> None:
        request = build(CompareRequest, ..., decoding=decoding)

`contract_options` adds one typer option per flag of the blocks named, and calls the command with, per block,
a dict of the values the user gave (left out: not given, so the contract's default stands). A flag two blocks
share (`--batch-size`, `--dtype` for generation and benchmarks) is one option whose value goes to both.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable, List, Literal, Optional, get_args, get_origin

import typer
from pydantic import BaseModel


def _flag_fields(model: type[BaseModel]) -> list[tuple[str, str, Any]]:
    """(field name, flag, field info) of every field of `model` declared with contracts.flag()."""
    found = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if info.description and info.description.startswith("--") and isinstance(extra, dict) and "help" in extra:
            found.append((name, info.description, info))
    return found


def _scalar(annotation: Any) -> Any:
    """The command-line type of a field's annotation: Optional, Annotated and Literal unwrapped."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        elif origin is Literal:
            return type(get_args(annotation)[0])
        else:
            return annotation


def _parameter(name: str, flag: str, info) -> inspect.Parameter:
    """The typer parameter of one flag. A bool field is a switch that sets the opposite of its default
    (`--no-chat-template` sets chat_template False); a tuple field is a repeatable option; every other
    option defaults to None, meaning "not given"."""
    help_text = info.json_schema_extra["help"]
    kind = _scalar(info.annotation)
    if kind is bool:
        option, annotation = typer.Option(False, flag, help=help_text), bool
    elif get_origin(kind) is tuple:
        option, annotation = typer.Option([], flag, help=help_text), List[get_args(kind)[0]]
    else:
        option, annotation = typer.Option(None, flag, help=help_text), Optional[kind]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _given(info, value: Any) -> tuple[bool, Any]:
    """Whether the user gave the flag, and the field's value then."""
    if _scalar(info.annotation) is bool:
        return (True, not info.default) if value else (False, None)
    if isinstance(value, list):
        return (bool(value), tuple(value))
    return (value is not None, value)


def contract_options(omit: frozenset[str] = frozenset(), **blocks: type[BaseModel]) -> Callable[[Callable], Callable]:
    """Add the flags of each contract block to a command (but the fields named in `omit`, which that command
    has no use for); the command gets, for each block's keyword, a dict of the fields the user set (see the
    module docstring)."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        hints = typing.get_type_hints(command)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
               if p.name not in blocks]
        taken = {p.name for p in own}
        flags: dict[str, inspect.Parameter] = {}
        routes: dict[str, list[tuple[str, str, Any]]] = {}  # parameter -> (block, field, info)
        for block, model in blocks.items():
            for field, flag, info in _flag_fields(model):
                if field in omit:
                    continue
                if flag not in flags:
                    # The Python name is the flag's, unless the command already has it (`--base` beside the
                    # BASELINE argument `base`): then the field's.
                    name = flag.lstrip("-").replace("-", "_")
                    name = field if name in taken else name
                    if name in taken or any(p.name == name for p in flags.values()):
                        raise TypeError(f"{command.__name__}: {flag} clashes with the parameter {name}")
                    flags[flag] = _parameter(name, flag, info)
                routes.setdefault(flags[flag].name, []).append((block, field, info))

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            collected: dict[str, dict[str, Any]] = {block: {} for block in blocks}
            for name, targets in routes.items():
                value = values.pop(name)
                for block, field, info in targets:
                    present, converted = _given(info, value)
                    if present:
                        collected[block][field] = converted
            return command(**values, **collected)

        parameters = [*own, *flags.values()]
        # Keyword-only parameters may not precede positional ones in a signature: typer reads only names and
        # defaults, so every parameter is keyword-or-positional here.
        wrapper.__signature__ = signature.replace(parameters=[
            p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters])
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer must read the new signature, not the command's own
        return wrapper

    return decorate
