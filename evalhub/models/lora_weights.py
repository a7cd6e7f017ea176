"""What a LoRA adapter's weights say before anything is loaded: whether it was ever trained.

peft initialises every LoRA B matrix to zero, so an adapter saved before its first optimizer step (a
crashed run's output, a `get_peft_model(...).save_pretrained` by mistake) adds exactly nothing to its base:
its "tuned" results would equal the base's. Reading the safetensors file tells, in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from evalhub.models.kinds import ADAPTER_WEIGHTS


def lora_b_all_zero(adapter: str | Path) -> bool:
    """True when the adapter has LoRA B matrices and every one of them is all zeros (never trained)."""
    from safetensors import safe_open

    found = False
    with safe_open(str(Path(adapter) / ADAPTER_WEIGHTS), framework="pt") as weights:
        for name in weights.keys():
            if ".lora_B." in name or name.endswith(".lora_B.weight"):
                found = True
                if bool(weights.get_tensor(name).any()):
                    return False
    return found
