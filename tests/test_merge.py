"""`evalhub merge`: the merged model gives base+adapter's logits, and bad inputs leave nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evalhub.errors import UserError
from tests.train_helpers import one_torch_thread  # noqa: F401 (fixture)
from trainers.merge import merge_adapter

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Not the prompts merge checks itself: the test has its own.
PROMPTS = ["Say this in Zorvish.\n\nstar loves boat", "What is the capital of Mirmiria?", "sun"]


def test_merged_model_equals_base_plus_adapter(toy_world, toy_adapter, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    check = merge_adapter(toy_world / "base", toy_adapter, out)
    assert {"config.json", "model.safetensors", "tokenizer.json", "merge.json"} <= {p.name for p in out.iterdir()}
    assert not any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in out.iterdir())
    assert json.loads((out / "merge.json").read_text())["max_abs_diff"] == check.max_abs_diff <= 1e-4

    tokenizer = AutoTokenizer.from_pretrained(toy_world / "base")
    base = AutoModelForCausalLM.from_pretrained(toy_world / "base", dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, toy_adapter).eval()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        for prompt in PROMPTS:
            batch = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)
            expected, got = with_adapter(**batch).logits, merged(**batch).logits
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
            with with_adapter.disable_adapter():  # and the adapter does change the model
                assert (with_adapter(**batch).logits - got).abs().max() > 0.1


def test_merge_refuses_what_it_cannot_merge_exactly(toy_world, toy_adapter, tmp_path):
    with pytest.raises(UserError, match="no adapter_config.json"):
        merge_adapter(toy_world / "base", toy_world / "base", tmp_path / "out")
    quantized = tmp_path / "nf4-base"
    quantized.mkdir()
    config = json.loads((toy_world / "base" / "config.json").read_text())
    (quantized / "config.json").write_text(json.dumps({**config, "quantization_config": {"load_in_4bit": True}}))
    with pytest.raises(UserError, match="quantized checkpoint; merge into the full-precision original"):
        merge_adapter(quantized, toy_adapter, tmp_path / "out")
    pickled = tmp_path / "pickled-adapter"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text((toy_adapter / "adapter_config.json").read_text())
    (pickled / "adapter_model.bin").write_bytes(b"")
    with pytest.raises(UserError, match="only safetensors"):
        merge_adapter(toy_world / "base", pickled, tmp_path / "out")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        merge_adapter(toy_world / "base", toy_adapter, taken)
    assert not (tmp_path / "out").exists()


def test_merge_cli_bad_input_is_one_line_and_exit_2(toy_world, tmp_path):
    result = subprocess.run([sys.executable, "-m", "evalhub", "merge", str(toy_world / "base"), str(tmp_path),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: {tmp_path}: no adapter_config.json; pass a LoRA adapter folder"
