"""Merge a LoRA adapter into its base and prove the merged model is the same model.

The base is always reloaded in float32: merging into a 4-bit base would round the adapter's update into
the quantization grid (a QLoRA adapter is merged into the full-precision original, never into the NF4
copy it was trained on). After saving, the merged model is loaded back from disk and its logits are
compared with base+adapter on a few prompts; a difference beyond the tolerance is an error, and nothing
is left at the output path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from evalhub.errors import UserError

CHECK_PROMPTS = (
    "What is the capital of Praloia?",
    "Translate into Zorvish.\n\nriver wants water",
    "Write one sentence about the sea.",
)


@dataclass(frozen=True)
class MergeCheck:
    """What the merge verified, written to merge.json beside the merged weights."""

    base: str
    adapter: str
    adapter_sha256: str
    prompts: int
    max_abs_diff: float
    atol: float


def _check_inputs(base: Path, adapter: Path, output: Path) -> None:
    if not (base / "config.json").is_file():
        raise UserError(f"{base}: not a model folder (no config.json); pass the base model the adapter was trained on")
    config = json.loads((base / "config.json").read_text())
    if config.get("quantization_config"):
        raise UserError(f"{base} is a quantized checkpoint; merge into the full-precision original instead")
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{adapter}: no adapter_config.json; pass a LoRA adapter folder")
    if not (adapter / "adapter_model.safetensors").is_file():
        raise UserError(f"{adapter}: adapter_model.safetensors is missing; evalhub loads only safetensors adapters")
    if output.exists() and not output.is_dir():
        raise UserError(f"{output} is a file; choose a new output folder")
    if output.exists() and any(output.iterdir()):
        raise UserError(f"{output} is not empty; choose a new output folder")


def _logits(model, tokenizer, prompts) -> list:
    import torch

    results = []
    with torch.no_grad():
        for prompt in prompts:
            if tokenizer.chat_template:
                batch = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                      return_tensors="pt", return_dict=True)
            else:
                batch = tokenizer(prompt, return_tensors="pt")
            results.append(model(**batch).logits.float())
    return results


def merge_adapter(base: Path | str, adapter: Path | str, output: Path | str, atol: float = 1e-4,
                  prompts: tuple[str, ...] = CHECK_PROMPTS) -> MergeCheck:
    """Write base+adapter as one float32 model into `output` (safetensors, tokenizer, merge.json)."""
    base, adapter, output = Path(base), Path(adapter), Path(output)
    _check_inputs(base, adapter, output)
    import gc

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalhub.models import load_causal_lm
    from trainers.data import file_sha256

    # The tokenizer is saved beside the merged weights exactly as the base has it (no pad token added).
    tokenizer = AutoTokenizer.from_pretrained(base)
    # float32 on the CPU: the merge and its logit check need exactness, not speed.
    model = load_causal_lm(base, dtype="float32", adapter=str(adapter), device=None, label="the base model")
    model.eval()
    expected = _logits(model, tokenizer, prompts)
    merged = model.merge_and_unload()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        merged.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        del model, merged
        gc.collect()
        # Check what was written, not what is in memory: reload from disk.
        reloaded = AutoModelForCausalLM.from_pretrained(staging, dtype=torch.float32).eval()
        got = _logits(reloaded, tokenizer, prompts)
        diff = max(float((g - e).abs().max()) for g, e in zip(got, expected))
        if diff > atol:
            raise UserError(f"the merged model's logits differ from base+adapter by {diff:.3g} (> {atol:g}); "
                            f"the adapter cannot be merged exactly, serve it unmerged instead")
        check = MergeCheck(base=str(base.resolve()), adapter=str(adapter.resolve()),
                           adapter_sha256=file_sha256(adapter / "adapter_model.safetensors"),
                           prompts=len(prompts), max_abs_diff=diff, atol=atol)
        (staging / "merge.json").write_text(json.dumps(asdict(check), indent=2) + "\n", encoding="utf-8")
        if output.exists():
            output.rmdir()  # empty, checked above
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return check
