"""Tokenizers and transformers models: full precision or 4-bit NF4, with or without a LoRA adapter.

Generation (hf backend), perplexity, lm-eval's HFLM and training all load through here, so a QLoRA adapter
is evaluated on the very 4-bit base it was trained on, and every tokenizer pads the same way.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from evalhub.errors import UserError

# Config fields that different architectures use for their context length.
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def load_tokenizer(weights: str | Path, label: str = "the model", flag: str | None = None):
    """The model's tokenizer, with the EOS token as pad token when it has none (batching needs one).

    `label` and `flag` name the model and the option that chose it in the error message.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(weights)
    except (OSError, ValueError) as error:
        raise _cannot_load(weights, error, label, flag) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_length(weights: str | Path, max_model_len: int | None = None) -> int:
    """Tokens the model attends over: `max_model_len` when given, else the model config's context length."""
    if max_model_len:
        return max_model_len
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(weights)
    config = getattr(config, "text_config", None) or config
    for name in _CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise UserError(f"{weights}: the config states no context length; pass --max-model-len")


def preferred_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def nf4_config():
    """bitsandbytes 4-bit NF4 with double quantization (QLoRA's recipe), computing in bfloat16 on a GPU and
    float32 on a CPU (whose bitsandbytes kernels are float32)."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def load_causal_lm(weights: str | Path, dtype: str = "auto", load_in_4bit: bool = False,
                   adapter: str | Sequence[str] | None = None, device: str | None = "auto", label: str = "the model",
                   flag: str | None = None):
    """A causal LM from `weights`, with `adapter` (a LoRA folder, or several) applied unmerged as peft
    adapters named by `adapter_name` ('tuned' for the first); `use_adapter` switches between them.

    `device` 'auto' places it on the GPU when there is one, else the CPU; None leaves placement to the caller
    (the Trainer moves the model itself).
    """
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; pass one of {', '.join(DTYPES)}")
    kwargs: dict = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
    if device is not None:
        kwargs["device_map"] = preferred_device() if device == "auto" else device
    if load_in_4bit:
        kwargs["quantization_config"] = nf4_config()
    try:
        model = AutoModelForCausalLM.from_pretrained(weights, **kwargs)
    except (OSError, ValueError) as error:
        raise _cannot_load(weights, error, label, flag) from None
    adapters = [adapter] if isinstance(adapter, (str, Path)) else list(adapter or ())
    if not adapters:
        return model
    from peft import PeftModel

    for index, folder in enumerate(adapters):
        try:
            if index == 0:
                model = PeftModel.from_pretrained(model, folder, adapter_name=adapter_name(0))
            else:
                model.load_adapter(folder, adapter_name=adapter_name(index))
        except (ValueError, KeyError, RuntimeError) as error:
            raise UserError(f"{folder} does not fit {weights} ({_first_line(error)}); pass the adapter's base") from None
    return model


def adapter_name(index: int) -> str:
    """The peft name of the index-th adapter loaded on one base."""
    return "tuned" if index == 0 else f"tuned-{index}"


def use_adapter(model, adapters: Sequence[str], adapter: str | None):
    """A context in which `model` (loaded with `adapters`) runs `adapter`, or its bare base when None."""
    if adapter is None:
        return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
    model.set_adapter(adapter_name(list(adapters).index(adapter)))
    return nullcontext()


def _cannot_load(weights, error: Exception, label: str, flag: str | None) -> UserError:
    where = f"{flag} " if flag else ""
    return UserError(f"cannot load {label} {weights}: {_first_line(error)}; pass {where}a model folder (with "
                     f"config.json and a tokenizer) or a model id in the local cache")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
