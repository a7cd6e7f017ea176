"""The model families a toy world can be built for, each with what makes it break evaluation tools its own way.

A family is data: the transformers config class and the settings that switch its distinctive features on, the
chat template and special tokens written from the family's published format, and the module names LoRA
adapts. The toy world's cache key hashes a family's spec (not this file), so changing one family rebuilds
only that family's worlds.

    llama    Llama: the toy world evalhub started with (its own Zephyr-style template), unchanged
    qwen2    Qwen2: biased q/k/v projections, grouped-query attention, ChatML template
             with its default system message, no BOS token
    mistral  Mistral: sliding-window attention (narrower than the context, so it matters), grouped-query
             attention, the [INST] template that refuses system turns and non-alternating roles
    gemma2   Gemma-2: attention and final logit soft-capping, alternating sliding-window and global layers,
             query scaling, tied and scaled embeddings, the "model" role and <end_of_turn> as a second EOS
    phi3     Phi-3: fused projections (qkv_proj, gate_up_proj) that LoRA and vLLM must map, <|end|> as a
             second EOS
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

# The llama toy's shape. head_dim 64: vLLM's CPU attention refuses 16 ("Unsupported CPU attention configuration").
SHAPE = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=2, head_dim=64, max_position_embeddings=512)
# A sliding window well inside the 512-token context, so long perplexity windows really exercise it.
TOY_SLIDING_WINDOW = 64


@dataclass(frozen=True)
class Family:
    """One model family: how its toy model, tokenizer and chat format are built."""

    name: str
    config_class: str  # a transformers config class
    model_class: str  # its causal-LM class
    config: dict  # the family's distinctive settings, on top of the shape
    chat_template: str
    special_tokens: tuple[str, ...]  # in vocabulary order, first of all tokens
    bos_token: str | None
    eos_token: str
    pad_token: str | None  # None: the family ships without one (load_tokenizer then pads with EOS)
    unk_token: str | None
    add_bos: bool  # the tokenizer prepends BOS to plain text
    # Further tokens that end a turn (generation_config.eos_token_id lists them after the EOS token).
    extra_eos: tuple[str, ...] = ()
    # LoRA target names of the attention projections alone (the family's attention-only adapter).
    attention_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    shape: dict = field(default_factory=lambda: dict(SHAPE))
    # Threads for pretraining; None: torch's default. A model this small gains nothing from a second thread
    # (measured on a busy 2-core machine: a Llama build took 277 s on one thread, 306 s on two), and a fixed
    # count keeps the bytes independent of the thread setting (OMP_NUM_THREADS, pytest-xdist workers): the
    # Llama world built on two threads differs from the one built on one, as their sums run in another order.
    pretrain_threads: int | None = 1

    def spec_hash(self) -> str:
        """A hash of everything this spec says, for the toy world's cache key."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


LLAMA = Family(
    name="llama", config_class="LlamaConfig", model_class="LlamaForCausalLM", config={"tie_word_embeddings": False},
    chat_template=(
        "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"),
    special_tokens=("<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"),
    bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", add_bos=True,
)

# Qwen2-Instruct's published template (a default system message when the conversation has none).
QWEN2 = Family(
    name="qwen2", config_class="Qwen2Config", model_class="Qwen2ForCausalLM",
    config={"tie_word_embeddings": False, "num_key_value_heads": 1, "use_sliding_window": False},
    chat_template=(
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, add_bos=False,
    extra_eos=("<|endoftext|>",),
)

# Mistral-7B-Instruct's published template: no system turn, roles must alternate, no generation prompt.
MISTRAL = Family(
    name="mistral", config_class="MistralConfig", model_class="MistralForCausalLM",
    config={"tie_word_embeddings": False, "num_key_value_heads": 1, "sliding_window": TOY_SLIDING_WINDOW},
    chat_template=(
        "{{ bos_token }}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"),
    special_tokens=("<unk>", "<s>", "</s>", "[INST]", "[/INST]"),
    bos_token="<s>", eos_token="</s>", pad_token=None, unk_token="<unk>", add_bos=True,
)

# Gemma-2-it's published template: "model" for the assistant, no system turn, <end_of_turn> ends a turn.
GEMMA2 = Family(
    name="gemma2", config_class="Gemma2Config", model_class="Gemma2ForCausalLM",
    config={"tie_word_embeddings": True, "num_key_value_heads": 1, "query_pre_attn_scalar": 64,
            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "sliding_window": TOY_SLIDING_WINDOW,
            "layer_types": ["sliding_attention", "full_attention"], "hidden_activation": "gelu_pytorch_tanh"},
    chat_template=(
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
        "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"),
    special_tokens=("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
    bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", add_bos=True,
    extra_eos=("<end_of_turn>",),
)

# Phi-3-mini-instruct's published template; its checkpoints fuse q/k/v and gate/up into one projection each.
PHI3 = Family(
    name="phi3", config_class="Phi3Config", model_class="Phi3ForCausalLM",
    config={"tie_word_embeddings": False, "original_max_position_embeddings": 512},
    chat_template=(
        "{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}"
        "{% endif %}"),
    special_tokens=("<unk>", "<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
    bos_token="<s>", eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<unk>", add_bos=True,
    extra_eos=("<|end|>",), attention_modules=("qkv_proj", "o_proj"),
    shape={k: v for k, v in SHAPE.items() if k != "head_dim"},  # Phi3Config derives it: 128 / 2 heads = 64
)

FAMILIES: dict[str, Family] = {f.name: f for f in (LLAMA, QWEN2, MISTRAL, GEMMA2, PHI3)}
DEFAULT_FAMILY = "llama"


def family(name: str) -> Family:
    from evalhub.errors import UserError

    if name not in FAMILIES:
        raise UserError(f"unknown --arch {name!r}; pass one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
