"""Training data: read and validate JSONL files whole, before any model is loaded, with file:line errors.

Three supervised formats are accepted, one per file:
  instruction   {"instruction", "input"?, "output"}         (the golden-set layout)
  prompt/completion {"prompt", "completion"}                (strings, or lists of chat messages)
  chat          {"messages": [{"role", "content"}, ...]}    (the last message is the assistant's answer)
and one preference format: {"prompt", "chosen", "rejected"}.

Every example becomes a chat prompt (a list of messages) plus the answer text, so training sees the same
chat-templated prompt that evaluation sends (`GoldenItem.prompt` is instruction + blank line + input).
The file's line number travels with each example: it is the example's id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.jsonl import read_json_objects

ROLES = {"system", "user", "assistant"}
FORMATS = {
    "instruction": ({"instruction", "output"}, {"instruction", "input", "output"}),
    "prompt_completion": ({"prompt", "completion"}, {"prompt", "completion"}),
    "chat": ({"messages"}, {"messages"}),
    "preference": ({"prompt", "chosen", "rejected"}, {"prompt", "chosen", "rejected"}),
}
# Extra keys a row may carry without being an error (ids and tags are common in exported data sets).
IGNORED_KEYS = {"id", "tags", "source", "meta", "metadata"}


@dataclass(frozen=True)
class SFTExample:
    """One supervised example: the chat prompt, and the answer the loss is computed on."""

    line: int
    prompt: tuple[dict, ...]
    completion: str


@dataclass(frozen=True)
class PreferenceExample:
    """One preference pair: a chat prompt, the preferred answer, and the rejected one."""

    line: int
    prompt: tuple[dict, ...]
    chosen: str
    rejected: str


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in chunks (training files and weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_sft_examples(path: Path | str) -> list[SFTExample]:
    """Read supervised data in any of the three formats, or raise UserError naming file:line and the fix."""
    examples = []
    for where, line, fmt, row in _rows(path):
        if fmt == "preference":
            raise UserError(f"{where}: this is preference data (prompt/chosen/rejected); use `evalhub train dpo`")
        examples.append(_sft_example(where, line, fmt, row))
    return examples


def load_preference_examples(path: Path | str) -> list[PreferenceExample]:
    """Read preference data {"prompt","chosen","rejected"}, or raise UserError naming file:line and the fix."""
    examples = []
    for where, line, fmt, row in _rows(path):
        if fmt != "preference":
            raise UserError(f"{where}: expected a preference pair with prompt, chosen and rejected; "
                            f"supervised data goes to `evalhub train sft`")
        examples.append(PreferenceExample(line=line, prompt=_prompt_messages(where, row["prompt"]),
                                          chosen=_answer_text(where, "chosen", row["chosen"]),
                                          rejected=_answer_text(where, "rejected", row["rejected"])))
    return examples


def load_training_examples(path: Path | str) -> list[SFTExample | PreferenceExample]:
    """Read a training file of either kind (the contamination check does not care which)."""
    examples: list[SFTExample | PreferenceExample] = []
    for where, line, fmt, row in _rows(path):
        if fmt == "preference":
            examples.append(PreferenceExample(line=line, prompt=_prompt_messages(where, row["prompt"]),
                                              chosen=_answer_text(where, "chosen", row["chosen"]),
                                              rejected=_answer_text(where, "rejected", row["rejected"])))
        else:
            examples.append(_sft_example(where, line, fmt, row))
    return examples


def _rows(path: Path | str):
    """Yield (where, line number, format, row) for each non-blank line; one format per file."""
    first_format: tuple[str, int] | None = None
    count = 0
    for where, number, row in read_json_objects(path, "training file", '{"instruction": ..., "output": ...}'):
        fmt = _detect_format(where, row)
        if first_format is None:
            first_format = (fmt, number)
        elif fmt != first_format[0]:
            raise UserError(f"{where}: {fmt} row in a {first_format[0]} file (line {first_format[1]}); "
                            f"use one format per file")
        count += 1
        yield where, number, fmt, row
    if not count:
        raise UserError(f"{path}: the training file is empty; add one JSON object per line")


def _detect_format(where: str, row: dict) -> str:
    keys = set(row) - IGNORED_KEYS
    for name, (required, allowed) in FORMATS.items():
        if required <= keys:
            unknown = keys - allowed
            if unknown:
                raise UserError(f"{where}: unknown field(s) {sorted(unknown)} in a {name} row; "
                                f"allowed: {sorted(allowed)}")
            return name
    raise UserError(f"{where}: unrecognised example with fields {sorted(keys)}; use instruction/input/output, "
                    f"prompt/completion, messages, or prompt/chosen/rejected")


def _text(where: str, field: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: field {field!r} must be a non-empty string")
    return value


def _messages(where: str, field: str, value) -> tuple[dict, ...]:
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: field {field!r} must be a non-empty list of {{\"role\", \"content\"}} messages")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise UserError(f"{where}: {field}[{index}] needs a role among {sorted(ROLES)}")
        messages.append({"role": message["role"], "content": _text(where, f"{field}[{index}].content",
                                                                   message.get("content"))})
    return tuple(messages)


def _prompt_messages(where: str, value) -> tuple[dict, ...]:
    """A prompt given as text becomes one user message; a message list must not end with the answer."""
    if isinstance(value, str):
        return ({"role": "user", "content": _text(where, "prompt", value)},)
    messages = _messages(where, "prompt", value)
    if messages[-1]["role"] == "assistant":
        raise UserError(f"{where}: the prompt ends with an assistant message; move the answer to the completion")
    return messages


def _answer_text(where: str, field: str, value) -> str:
    """An answer given as text, or as a one-message assistant list (the conversational layout)."""
    if isinstance(value, list):
        messages = _messages(where, field, value)
        if len(messages) != 1 or messages[0]["role"] != "assistant":
            raise UserError(f"{where}: field {field!r} must be one assistant message")
        return messages[0]["content"]
    return _text(where, field, value)


def _sft_example(where: str, line: int, fmt: str, row: dict) -> SFTExample:
    if fmt == "instruction":
        instruction = _text(where, "instruction", row["instruction"])
        extra = row.get("input", "")
        if not isinstance(extra, str):
            raise UserError(f"{where}: field 'input' must be a string")
        content = f"{instruction}\n\n{extra}" if extra else instruction
        return SFTExample(line, ({"role": "user", "content": content},), _text(where, "output", row["output"]))
    if fmt == "prompt_completion":
        return SFTExample(line, _prompt_messages(where, row["prompt"]),
                          _answer_text(where, "completion", row["completion"]))
    messages = _messages(where, "messages", row["messages"])
    if messages[-1]["role"] != "assistant" or len(messages) < 2:
        raise UserError(f"{where}: the conversation must end with an assistant message after a user message")
    # Loss on the final assistant turn only: earlier turns are context.
    return SFTExample(line, messages[:-1], messages[-1]["content"])


def preference_rows(examples, chat_template: bool) -> list[dict]:
    """TRL preference rows with an explicit prompt (DPO and reward models): conversational (chat template
    applied by TRL), or plain text as evaluation renders it."""
    if chat_template:
        return [{"prompt": list(e.prompt), "chosen": [{"role": "assistant", "content": e.chosen}],
                 "rejected": [{"role": "assistant", "content": e.rejected}]} for e in examples]
    return [{"prompt": "\n\n".join(m["content"] for m in e.prompt) + "\n", "chosen": e.chosen, "rejected": e.rejected}
            for e in examples]
