"""Independent measurements for the training tests: computed here with transformers alone, not read from
the trainer's own logs, so a test compares what the saved weights do with what the trainer claimed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def completion_nll(model, tokenizer, user: str, answer: str) -> tuple[float, int]:
    """(summed negative log-likelihood, token count) of `answer` after the chat-templated `user` message."""
    import torch

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                           tokenize=False)
    full = tokenizer.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                                         tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    ids = tokenizer(full, add_special_tokens=False, return_tensors="pt").input_ids
    assert ids[0, :len(prompt_ids)].tolist() == prompt_ids
    with torch.no_grad():
        logprobs = model(ids).logits[0, :-1].float().log_softmax(-1)
    targets = ids[0, len(prompt_ids):]
    picked = logprobs[len(prompt_ids) - 1:].gather(1, targets[:, None])
    return float(-picked.sum()), len(targets)


def mean_completion_nll(model, tokenizer, pairs: list[tuple[str, str]]) -> float:
    """Token-weighted mean NLL over (user, answer) pairs: the trainer's completion-only loss."""
    total, count = 0.0, 0
    for user, answer in pairs:
        nll, n = completion_nll(model, tokenizer, user, answer)
        total, count = total + nll, count + n
    return total / count


def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 16) -> list[str]:
    answers = []
    for prompt in prompts:
        batch = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                              return_tensors="pt", return_dict=True)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        answers.append(tokenizer.decode(out[0][batch["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers


@pytest.fixture(scope="module")
def one_torch_thread():
    """Train on one thread, and restore the setting afterwards. The toy model is too small to gain from a
    second thread, and on a busy 2-core machine OpenMP threads waiting for each other slow training down
    tenfold and more (measured: 20 toy SFT steps took 63 s on two threads, 3.4 s on one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
