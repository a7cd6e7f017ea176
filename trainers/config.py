"""Training configs: a YAML file of settings, then command-line flags on top (a flag always wins).

Keys are the field names of the settings dataclass (SFTSettings, DPOSettings); an unknown key is an error
naming the allowed ones, so a typo never silently falls back to a default. A path value `toy:KEY` names
a file of the offline toy world by its manifest key (`toy:base`, `toy:sft`, `toy:dpo`, `toy:golden`), so
the example configs run anywhere without knowing where the toy world is cached.

`--config` takes a YAML file, or the name of a config shipped in trainers/configs/ (`toy_sft`, `toy_dpo`,
`qlora_sft`), which an installed evalhub carries as package data: `evalhub train sft --config toy_sft`
works from any folder. A path that exists wins over a shipped name.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from evalhub.errors import UserError

Settings = TypeVar("Settings")
TOY_PREFIX = "toy:"


def load_settings(settings_class: type[Settings], config: Path | None = None,
                  overrides: dict[str, Any] | None = None) -> Settings:
    """Build `settings_class` from a YAML file (optional) and flag overrides (None values are ignored)."""
    values: dict[str, Any] = {}
    if config is not None:
        config = resolve_config(config)
        values.update(_read_yaml(config))
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    fields = {f.name: f for f in dataclasses.fields(settings_class)}
    unknown = set(values) - set(fields)
    if unknown:
        where = f"{config}: " if config else ""
        raise UserError(f"{where}unknown setting(s) {sorted(unknown)}; allowed: {sorted(fields)}")
    missing = [name for name, f in fields.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in missing)
        raise UserError(f"missing setting(s) {missing}; give them in the --config file or as {flags}")
    hints = typing.get_type_hints(settings_class)
    return settings_class(**{name: _coerce(name, hints[name], value) for name, value in values.items()})


def resolve_config(config: str | Path) -> Path:
    """The YAML file `config` names: an existing file, or a shipped config by name (`toy_sft`, `toy_dpo.yaml`)."""
    from evalhub.resources import CONFIG_SUFFIXES, training_configs

    path = Path(config)
    if path.is_file():
        return path
    shipped = training_configs()
    bare = str(config) == path.name  # no folder in it: may name a shipped config
    stem = path.stem if path.suffix in CONFIG_SUFFIXES else path.name
    if bare and stem in shipped:
        return shipped[stem]
    what = "is a folder, not a config file" if path.is_dir() else "no such config file"
    raise UserError(f"{config}: {what}; pass --config a YAML file of settings or a shipped config: "
                    f"{', '.join(sorted(shipped))}")


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise UserError(f"{path}: no such config file; pass --config a YAML file of settings")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: bad YAML ({getattr(error, 'problem', error)}); fix the config file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of setting: value at the top level")
    return data


def _resolve_toy(value: str) -> Path:
    from evalhub.toy import build_toy_world

    key = value[len(TOY_PREFIX):]
    world = build_toy_world(seed=0, quiet=True)
    manifest = json.loads((world / "manifest.json").read_text())
    if key not in manifest or not isinstance(manifest[key], str) or not (world / manifest[key]).exists():
        files = sorted(k for k, v in manifest.items() if isinstance(v, str) and (world / v).exists())
        raise UserError(f"{value!r} names nothing in the toy world; use toy:KEY with KEY among {files}")
    return world / manifest[key]


def _coerce(name: str, hint, value):
    """Check a YAML/flag value against the field's type; paths and numbers written as text are converted."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is Path and isinstance(value, (str, Path)):
            return _resolve_toy(value) if str(value).startswith(TOY_PREFIX) else Path(value)
        if typing.get_origin(option) is list and isinstance(value, (list, tuple)):
            (item_type,) = typing.get_args(option)
            return [_coerce(name, item_type, v) for v in value]
        if option is bool and isinstance(value, bool):
            return value
        if option in (int, float) and not isinstance(value, bool):
            if isinstance(value, (int, float)) and (option is float or float(value).is_integer()):
                return option(value)
            if isinstance(value, str):  # YAML reads 3e-3 (no dot) as text
                try:
                    return option(value)
                except ValueError:
                    pass
        if option is str and isinstance(value, str):
            return value
    if typing.get_origin(hint) is list and isinstance(value, (str, Path)):  # one path where a list is expected
        return _coerce(name, hint, [value])
    expected = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise UserError(f"setting {name!r} must be {expected}, got {value!r}")



def toy_settings(settings_class: type[Settings], name: str = "toy_sft", **overrides: Any) -> Settings:
    """Settings from a shipped toy config (`toy_sft`, `toy_dpo`) with `overrides` on top: the toy-scale
    hyperparameters for the demo, the tests and the benchmarks, which evalhub's defaults (made for real
    models) would not fit."""
    return load_settings(settings_class, resolve_config(name), overrides)
