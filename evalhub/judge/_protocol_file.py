"""Judge protocols as data: the prompt templates, the verdict scale and the parser, in one versioned file.

A protocol is a TOML file: the shipped ones live in `evalhub/judge/protocols/` (`pairwise`, the default,
and `arena-hard`), and `--judge-protocol` takes a shipped name or the path of a file of your own, so a team
adds a protocol without touching code. The file is checked whole when it is loaded (pydantic, unknown keys
refused, every template rendered once with every placeholder), and a bad file is one UserError naming the
file and the field.

What makes a reply reusable is what the judge was shown and how its reply is read, so the protocol's hash
(of its parsed content) is part of every cache key and is stored with the run.

Templates are Python format strings (`{{` and `}}` for literal braces) with these placeholders:
  system:          {marker} {reference_rule}
  user:            {prompt} {reference_block} {marker} {answer_a} {answer_b}
  reference_block: {reference} {marker}

Parsers:
  json      the whole reply is a JSON object {"verdict": TOKEN, ...} (a Markdown fence around it is tolerated),
            or else exactly one distinct [[TOKEN]] appears in the reply;
  brackets  exactly one distinct [[TOKEN]] appears in the reply (the judge may write anything before it, e.g.
            its own answer). Two different tokens are ambiguous and the reply is not read.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalhub.errors import UserError

DEFAULT_PROTOCOL = "pairwise"
PROTOCOLS_DIR = Path(__file__).with_name("protocols")


class VerdictToken(BaseModel):
    """One verdict the judge may give: its token, which answer it favours, and how strongly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1, max_length=16, description="what the judge writes, e.g. 'A' or 'A>>B'")
    winner: Literal["A", "B", "tie"] = Field(description="the answer it favours, or tie")
    # A strong verdict weighs more in Bradley-Terry (Arena-Hard counts [[A>>B]] three times); in the win rate
    # every verdict in one direction is one win.
    weight: int = Field(1, ge=1, le=10, description="weight in Bradley-Terry")
    aliases: tuple[str, ...] = Field((), description="other spellings accepted for this token, e.g. 'C' for tie")
    strong: bool = Field(False, description="a decisive verdict (e.g. [[A>>B]])")


class ProtocolFile(BaseModel):
    """A judge protocol file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    description: str = ""
    parser: Literal["json", "brackets"]
    structured_output: bool = Field(False, description="ask for the JSON verdict schema where the judge supports it")
    max_completion_tokens: int = Field(300, ge=1, description="the judge's reply budget unless the run sets one")
    system: str
    user: str
    reference_rule: str = ""
    reference_block: str = ""
    reask: str
    verdicts: tuple[VerdictToken, ...] = Field(min_length=2)

    @field_validator("verdicts")
    @classmethod
    def _distinct_tokens(cls, verdicts: tuple[VerdictToken, ...]) -> tuple[VerdictToken, ...]:
        seen: set[str] = set()
        for verdict in verdicts:
            for spelling in (verdict.token, *verdict.aliases):
                key = _normal(spelling)
                if key in seen:
                    raise ValueError(f"the verdict token {spelling!r} is given twice")
                seen.add(key)
        if not {"A", "B"} <= {v.winner for v in verdicts}:
            raise ValueError("the verdicts must include one for A and one for B")
        return verdicts

    @model_validator(mode="after")
    def _templates_render(self) -> "ProtocolFile":
        fields = {"system": dict(marker="m", reference_rule="r"),
                  "user": dict(prompt="p", reference_block="b", marker="m", answer_a="a", answer_b="b"),
                  "reference_block": dict(reference="r", marker="m")}
        for name, values in fields.items():
            template = getattr(self, name)
            try:
                template.format(**values)
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(f"{name}: the template does not render ({type(error).__name__}: {error}); "
                                 f"its placeholders are {', '.join('{' + v + '}' for v in values)} and a literal "
                                 f"brace is written {{{{ or }}}}") from None
        for placeholder in ("{answer_a}", "{answer_b}"):
            if placeholder not in self.user:
                raise ValueError(f"user: the template must show {placeholder}")
        return self


class Protocol:
    """A loaded protocol: its file, its hash, and the lookups the parser needs."""

    def __init__(self, spec: ProtocolFile, source: str):
        self.spec = spec
        self.source = source  # the shipped name or the file it was read from
        self.name, self.version = spec.name, spec.version
        self.hash = hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]
        self.tokens: dict[str, VerdictToken] = {}
        for verdict in spec.verdicts:
            for spelling in (verdict.token, *verdict.aliases):
                self.tokens[_normal(spelling)] = verdict

    def verdict(self, written: str) -> VerdictToken | None:
        """The verdict a token as written stands for (case and spaces ignored), or None."""
        return self.tokens.get(_normal(written))

    @property
    def response_format(self) -> dict | None:
        """The OpenAI `response_format` of a JSON-verdict protocol that asks for structured output, else None."""
        if not self.spec.structured_output or self.spec.parser != "json":
            return None
        return {
            "type": "json_schema",
            "json_schema": {
                "name": "pairwise_verdict",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"verdict": {"type": "string", "enum": [v.token for v in self.spec.verdicts]},
                                   "reason": {"type": "string"}},
                    "required": ["verdict", "reason"],
                    "additionalProperties": False,
                },
            },
        }

    def describe(self) -> dict:
        """What a run stores about its protocol."""
        return {"name": self.name, "version": self.version, "hash": self.hash, "source": self.source}


def _normal(token: str) -> str:
    return "".join(token.split()).lower()


def shipped_protocols() -> dict[str, Path]:
    """The protocols that ship with evalhub, by name."""
    return {path.stem: path for path in sorted(PROTOCOLS_DIR.glob("*.toml"))}


def load_protocol(name_or_path: str | None = None) -> Protocol:
    """A shipped protocol by name, or a protocol file by path; UserError naming the fix otherwise."""
    name_or_path = name_or_path or DEFAULT_PROTOCOL
    shipped = shipped_protocols()
    if name_or_path in shipped:
        return _load(str(shipped[name_or_path]), name_or_path)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UserError(f"--judge-protocol {name_or_path}: no such protocol file; pass a .toml file or one of "
                            f"{', '.join(shipped)}")
        return _load(str(path.resolve()), str(path))
    raise UserError(f"--judge-protocol {name_or_path!r}: unknown protocol; use one of {', '.join(shipped)} or the "
                    f"path of a protocol .toml file (see docs/judging.md)")


@lru_cache(maxsize=32)
def _load_cached(path: str, mtime_ns: int, source: str) -> Protocol:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"--judge-protocol {source}: not valid TOML ({error}); fix the file") from None
    try:
        spec = ProtocolFile.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = "".join(f"{p}: " for p in problem["loc"][:1]) + ".".join(str(p) for p in problem["loc"][1:])
        where = where + ": " if where and not where.endswith(": ") else where
        raise UserError(f"--judge-protocol {source}: {where}{problem['msg'].removeprefix('Value error, ')}; "
                        f"fix the protocol file (see docs/judging.md)") from None
    return Protocol(spec, source)


def _load(path: str, source: str) -> Protocol:
    return _load_cached(path, Path(path).stat().st_mtime_ns, source)
