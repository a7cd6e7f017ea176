"""Reward models: a base with a one-output sequence-classification head and a LoRA adapter (`evalhub train rm`).

    rm = RewardModel.load("adapters/toy-rm")
    rm.score([(prompt_messages, answer), ...])   # one float per answer, higher is better

A reward model folder is a peft adapter whose `adapter_config.json` says `task_type: SEQ_CLS`; the score head
is saved with it (`modules_to_save`), and its `training.json` says whether it was trained on chat-templated
prompts. An answer is scored as the trainer saw it: the prompt and the answer as one conversation through
the base's chat template (or plain text followed by the end-of-sequence token), the reward read at the last
token. `evalhub rm eval`, the `rm:` judge and `evalhub train grpo --reward rm:PATH` all score through here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from evalhub.errors import UserError

Conversation = tuple[Sequence[dict], str]  # (prompt messages, answer)


def check_reward_model(path: str | Path, flag: str = "rm:PATH") -> Path:
    """The folder of a reward model trained by `evalhub train rm`, or UserError naming the fix; nothing loads."""
    folder = Path(path).expanduser()
    config = folder / "adapter_config.json"
    if not config.is_file():
        what = "no such folder" if not folder.exists() else "no adapter_config.json in it"
        raise UserError(f"{flag}: {folder}: {what}; pass the --output folder of `evalhub train rm`")
    try:
        task = json.loads(config.read_text(encoding="utf-8")).get("task_type")
    except json.JSONDecodeError:
        raise UserError(f"{flag}: {config} is not JSON; pass the --output folder of `evalhub train rm`") from None
    if task != "SEQ_CLS":
        raise UserError(f"{flag}: {folder} is a {task or 'non-classifier'} adapter, not a reward model; train one "
                        "with `evalhub train rm`")
    if not (folder / "adapter_model.safetensors").is_file():
        raise UserError(f"{flag}: {folder} has no adapter_model.safetensors; train it again with `evalhub train rm`")
    return folder


def load_sequence_classifier(weights: str | Path, dtype: str = "float32", load_in_4bit: bool = False,
                             device: str | None = None, label: str = "the base model", flag: str | None = "--base"):
    """`weights` with a freshly initialised one-output score head (the reward), its pad token set (the head
    reads the last token before padding)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from evalhub.models.hf_loading import _cannot_load, load_tokenizer, nf4_config

    tokenizer = load_tokenizer(weights, label=label, flag=flag)
    kwargs: dict = {"num_labels": 1, "dtype": getattr(torch, dtype) if dtype != "auto" else "auto"}
    if device is not None:
        kwargs["device_map"] = device
    if load_in_4bit:
        kwargs["quantization_config"] = nf4_config()
    from transformers.utils import logging as hf_logging

    # The load report lists the causal LM head as unused and the score head as new: both are expected here.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(weights, **kwargs)
    except (OSError, ValueError) as error:
        raise _cannot_load(weights, error, label, flag) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


class RewardModel:
    """A loaded reward model (or one still training: `model` is any peft SEQ_CLS model) that scores answers."""

    def __init__(self, model, tokenizer, chat_template: bool = True, max_length: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.max_length = max_length

    @classmethod
    def load(cls, path: str | Path, base: str | Path | None = None, flag: str = "rm:PATH") -> "RewardModel":
        """The reward model in `path` on its base (from adapter_config.json, or `base` where it moved)."""
        import torch
        from peft import PeftModel

        from evalhub.models.hf_loading import preferred_device

        folder = check_reward_model(path, flag)
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        base = base or config.get("base_model_name_or_path")
        if not base:
            raise UserError(f"{flag}: {folder}/adapter_config.json names no base model; pass its base")
        record = folder / "training.json"
        settings = json.loads(record.read_text(encoding="utf-8")).get("config", {}) if record.is_file() else {}
        device = preferred_device()
        model, tokenizer = load_sequence_classifier(base, dtype="float32", device=None,
                                                    label="the reward model's base", flag=flag)
        try:
            model = PeftModel.from_pretrained(model, str(folder))
        except (ValueError, KeyError, RuntimeError) as error:
            raise UserError(f"{flag}: {folder} does not fit its base {base} ({str(error).splitlines()[0]}); "
                            "pass the reward model trained on this base") from None
        model.to(torch.device(device)).eval()
        return cls(model, tokenizer, chat_template=settings.get("chat_template", True),
                   max_length=settings.get("max_length"))

    def token_ids(self, prompt: Sequence[dict] | str, answer: str) -> list[int]:
        """The tokens the reward is read from, as TRL's RewardTrainer tokenizes a preference pair."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if self.chat_template:
            ids = self.tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}],
                                                     tokenize=True, return_dict=True)["input_ids"]
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n" + answer
            eos = self.tokenizer.eos_token or ""
            ids = self.tokenizer(text=text if text.endswith(eos) else text + eos)["input_ids"]
        if self.max_length and len(ids) > self.max_length:
            ids = ids[-self.max_length:]  # keep the answer's end, where the reward is read
        return list(ids)

    def score(self, conversations: Sequence[Conversation], batch_size: int = 16) -> list[float]:
        """One reward per (prompt, answer), batched, in order."""
        import torch

        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        rewards: list[float] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(conversations), batch_size):
                batch = [self.token_ids(p, a) for p, a in conversations[start:start + batch_size]]
                width = max(len(ids) for ids in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, ids in enumerate(batch):
                    input_ids[row, :len(ids)] = torch.tensor(ids)
                    mask[row, :len(ids)] = 1
                with torch.no_grad():
                    logits = self.model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
                rewards.extend(float(v) for v in logits[:, 0].float().cpu())
        finally:
            self.model.train(was_training)
        return rewards
