"""The adapter must really apply: an untrained adapter (every LoRA B zero) stops a compare with exit 2 before
anything loads, and the probe (log-probabilities of a prompt under the backend, base against tuned) catches an
adapter the backend leaves without effect."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalhub.contracts import CompareRequest
from evalhub.errors import UserError
from evalhub.golden import load_golden


@pytest.fixture(scope="module")
def untrained_adapter(toy_world, tmp_path_factory):
    """A LoRA adapter saved straight after peft initialised it: B matrices zero, A random."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("untrained") / "adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(toy_world / "base"),
                           LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def test_lora_b_all_zero_tells_an_untrained_adapter(untrained_adapter, toy_adapter):
    from evalhub.models.lora_weights import lora_b_all_zero

    assert lora_b_all_zero(untrained_adapter) and not lora_b_all_zero(toy_adapter)


def test_an_untrained_adapter_stops_compare_with_exit_2_and_writes_nothing(toy_world, toy_manifest, untrained_adapter,
                                                                          tmp_path):
    db = tmp_path / "store.duckdb"
    done = subprocess.run([sys.executable, "-m", "evalhub", "compare", str(toy_world / "base"), str(untrained_adapter),
                           "--golden", str(toy_world / toy_manifest["golden"]), "--judge", "reference", "--backend",
                           "hf", "--db", str(db), "--json", str(tmp_path / "s.json")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: the adapter ") and str(untrained_adapter) in line
    assert "never trained: every LoRA B matrix is zero" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no summary, no work folder


def _request(toy_world, toy_manifest, tuned) -> CompareRequest:
    return CompareRequest(base=str(toy_world / "base"), tuned=str(tuned), golden=[str(toy_world / toy_manifest["golden"])],
                          judge="reference", backend="hf")


def test_the_probe_stops_an_adapter_without_effect_naming_it_and_the_fallback(toy_world, toy_manifest,
                                                                            untrained_adapter):
    """The probe alone (the weights check skipped): the hf backend scores the probe identically with the adapter
    on and off, which is what a backend that drops the adapter looks like."""
    from evalhub import stages

    items = load_golden(toy_world / toy_manifest["golden"])[:1]
    with pytest.raises(UserError) as error:
        stages.check_adapter_applies(_request(toy_world, toy_manifest, untrained_adapter), items, lambda _: None)
    message = str(error.value)
    assert str(untrained_adapter) in message and "has no effect under the hf backend" in message
    assert "same log-probabilities" in message and "pass --backend vllm" in message


def test_a_trained_adapter_passes_the_probe(toy_world, toy_manifest, toy_adapter):
    from evalhub import stages

    said: list[str] = []
    items = load_golden(toy_world / toy_manifest["golden"])[:1]
    stages.check_adapter_trained(_request(toy_world, toy_manifest, toy_adapter))
    stages.check_adapter_applies(_request(toy_world, toy_manifest, toy_adapter), items, said.append)
    (line,) = said
    nats = float(line.split("by ")[1].split(" nats")[0])
    assert nats > 1  # the adapter moved the probe (a Zorvish item and its ideal answer) by whole nats
