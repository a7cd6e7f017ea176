"""Perplexity and bits-per-byte of two models (baseline and candidate) on held-out text.

Token-level negative log-likelihood over sliding windows. Each text is encoded without special tokens and
conditioned on the BOS token (EOS when there is none). The first window of a text scores its first `window`
tokens; each later window scores the next `stride` tokens, given up to `window` tokens before them. With
stride equal to the window (the default) the windows are disjoint and the result equals lm-eval's rolling
log-likelihood (`loglikelihood_rolling`, hf model with add_bos_token=False: lm-eval's default would also
score a BOS token that the tokenizer adds to the text itself).

    perplexity = exp(NLL / tokens)      bits_per_byte = NLL / ln 2 / UTF-8 bytes of the texts
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from evalhub.errors import UserError
from evalhub.generate import BackendOptions, load_backend, model_plans, resolve_backend
from evalhub.generate._protocol import Window
from evalhub.models import context_length, load_tokenizer

# vLLM scores a window as a prompt of window + 1 tokens (the inputs, then the last target) and must still
# generate one token after it: its windows are 2 tokens shorter than the context. The default window leaves
# that room on every backend, so hf and vllm measure the same windows.
CONTEXT_RESERVE = {"hf": 0, "vllm": 2}
DEFAULT_RESERVE = 2


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def measure_perplexity(base: str | Path, tuned: str | Path | None, texts: Sequence[str], window: int | None = None,
                       stride: int | None = None, backend: str = "auto",
                       options: BackendOptions | None = None,
                       adapter_base: str | Path | None = None) -> dict[str, PerplexityResult]:
    """{'base': PerplexityResult, 'tuned': PerplexityResult} ('tuned' absent when tuned is None): the baseline
    and the candidate, each any kind of model (`adapter_base`: where the adapters' base is now).

    `window` defaults to the model's context less 2 tokens, `stride` to the window (disjoint windows).
    Adapters share their base's weights (one engine or model, each adapter switched on for its own pass).
    """
    options = options or BackendOptions()
    name = resolve_backend(backend, options)
    if name == "openai":
        raise UserError("perplexity needs the model weights; pass --backend hf or --backend vllm")
    texts = list(texts)
    total_bytes = sum(len(text.encode("utf-8")) for text in texts)
    if total_bytes == 0:
        raise UserError("no text to measure; pass a non-empty .txt file or JSONL with a 'text' field")
    plans = model_plans(name, base, tuned, adapter_base=adapter_base)
    windows: dict[str, list[Window]] = {}
    for plan in plans:
        size, step = _window_and_stride(name, context_length(plan.weights, options.max_model_len), window, stride)
        plan_windows = _text_windows(load_tokenizer(plan.weights), texts, size, step)
        for one_pass in plan.passes:
            windows[one_pass.role] = plan_windows
    loglikelihoods = load_backend(name).score(plans, windows, options)
    results = {}
    for role, role_windows in windows.items():
        nll = -math.fsum(loglikelihoods[role])
        tokens = sum(w.scored for w in role_windows)
        results[role] = PerplexityResult(perplexity=math.exp(nll / tokens), bits_per_byte=nll / math.log(2) / total_bytes,
                                         tokens=tokens, bytes=total_bytes)
    return results


def load_texts(path: str | Path) -> list[str]:
    """The texts of a perplexity data file: JSONL (.jsonl) with a string `text` per line, else the whole
    file as one plain text."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass a .txt file or a .jsonl file with a 'text' field per line")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: invalid UTF-8; save the file as UTF-8") from None
    if path.suffix.lower() != ".jsonl":
        return [content]
    texts = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: bad JSON ({error.msg}); write one JSON object per line") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise UserError(f"{path}:{number}: expected an object with a string field 'text'")
        texts.append(row["text"])
    return texts


def _window_and_stride(backend: str, context: int, window: int | None, stride: int | None) -> tuple[int, int]:
    limit = context - CONTEXT_RESERVE[backend]
    size = window or context - DEFAULT_RESERVE
    if not 1 <= size <= limit:
        raise UserError(f"--window {size} does not fit the {backend} backend's context of {context} tokens; "
                        f"pass --window between 1 and {limit}")
    step = stride or size
    if not 1 <= step <= size:
        raise UserError(f"--stride {step} must be between 1 and the window ({size})")
    return size, step


def _text_windows(tokenizer, texts: Sequence[str], window: int, stride: int) -> list[Window]:
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    windows: list[Window] = []
    for text in texts:
        windows += sliding_windows([prefix] + tokenizer(text, add_special_tokens=False).input_ids, window, stride)
    return windows


def sliding_windows(sequence: Sequence[int], window: int, stride: int) -> list[Window]:
    """Windows scoring every token of sequence[1:] exactly once, each given at most `window` tokens before
    its last target: the first window scores `window` targets, every later one `stride`."""
    windows = []
    begin = 1  # index of the next target to score
    while begin < len(sequence):
        end = min(begin + (window if begin == 1 else stride), len(sequence))  # targets sequence[begin:end]
        start = max(0, end - 1 - window)
        windows.append(Window(tokens=tuple(sequence[start:end]), scored=end - begin))
        begin = end
    return windows
