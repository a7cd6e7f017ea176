"""Tokenizers and transformers models: full precision or 4-bit NF4, with or without a LoRA adapter.

Generation (hf backend), perplexity, lm-eval's HFLM and training all load through here, so a QLoRA adapter
is evaluated on the very 4-bit base it was trained on, and every tokenizer pads the same way.
"""

from __future__ import annotations

from pathlib import Path

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


def load_causal_lm(weights: str | Path, dtype: str = "auto", load_in_4bit: bool = False, adapter: str | None = None,
                   device: str | None = "auto", label: str = "the model", flag: str | None = None):
    """A causal LM from `weights`, with `adapter` (a LoRA folder) applied unmerged as peft adapter 'tuned'.

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
    if adapter is None:
        return model
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, adapter, adapter_name="tuned")
    except (ValueError, KeyError, RuntimeError) as error:
        raise UserError(f"{adapter} does not fit {weights} ({_first_line(error)}); pass the adapter's base") from None


def _cannot_load(weights, error: Exception, label: str, flag: str | None) -> UserError:
    where = f"{flag} " if flag else ""
    return UserError(f"cannot load {label} {weights}: {_first_line(error)}; pass {where}a model folder (with "
                     f"config.json and a tokenizer) or a model id in the local cache")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
