"""Every model family end to end on its toy world, with real components, the same tests for each family.

Per family (one module-scoped world, adapter and vLLM compare each):
  - the toy world: the family's config class with its distinctive features on, its chat template, and the
    same learnt skill and manifest keys as the Llama world;
  - `evalhub compare` with the adapter served by vLLM (generation, the adapter check, perplexity in one
    engine), over single-turn and multi-turn golden items, judged by the reference judge;
  - generation and perplexity through transformers agree with what vLLM produced in that compare;
  - `evalhub bench` runs the world's local lm-eval task;
  - LoRA on the family's attention-only module names and QLoRA train, and the all-linear adapter merges.

docs/models.md records the resulting matrix of family x feature x backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from evalhub.toy.families import FAMILIES
from tests.train_helpers import one_torch_thread, read_jsonl, write_jsonl  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # see tests/train_helpers.one_torch_thread
N_SINGLE, N_MULTI = 12, 4


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    """The family's toy world, the demo's LoRA adapter trained on it (cached beside it), and golden sets."""
    from evalhub.demo import demo_adapter
    from evalhub.toy import build_toy_world

    arch = request.param
    world = build_toy_world(seed=0, quiet=True, arch=arch)
    manifest = json.loads((world / "manifest.json").read_text())
    adapter = demo_adapter(world, seed=0)
    folder = tmp_path_factory.mktemp(f"family-{arch}")
    golden = read_jsonl(world / manifest["golden"])
    single = write_jsonl(folder / "single.jsonl", golden[:N_SINGLE])
    # Multi-turn items: an earlier translation and its answer, then a new request.
    multi = write_jsonl(folder / "multi.jsonl", [
        {"id": f"mt-{k}", "messages": [
            {"role": "user", "content": f"{a['instruction']}\n\n{a['input']}"},
            {"role": "assistant", "content": a["output"]},
            {"role": "user", "content": f"{b['instruction']}\n\n{b['input']}"}],
         "output": b["output"], "tags": ["multi-turn"]}
        for k, (a, b) in enumerate(zip(golden[50:50 + N_MULTI], golden[60:60 + N_MULTI]))])
    return SimpleNamespace(arch=arch, world=world, manifest=manifest, base=world / manifest["base"], adapter=adapter,
                           folder=folder, single=single, multi=multi)


def _evalhub(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalhub", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **ONE_THREAD})


@pytest.fixture(scope="module")
def vllm_compare(family):
    """`evalhub compare BASE ADAPTER --backend vllm` over both golden sets, with perplexity."""
    pytest.importorskip("vllm")
    db, summary = family.folder / "store.duckdb", family.folder / "summary.json"
    done = _evalhub("compare", str(family.base), str(family.adapter), "--golden", str(family.single), "--golden",
                    str(family.multi), "--judge", "reference", "--backend", "vllm", "--max-new-tokens", "24",
                    "--perplexity-data", f"general={family.world / family.manifest['heldout_general']}",
                    "--db", str(db), "--json", str(summary), "--report-dir", str(family.folder / "reports"),
                    cwd=family.folder)
    assert done.returncode == 0, done.stderr[-4000:]
    from evalhub.store import read_connection

    with read_connection(db) as con:
        rows = con.execute("SELECT role, golden_file, item_id, output FROM generations").fetchall()
    answers: dict[str, dict[str, str]] = {}
    for role, golden_file, item_id, output in rows:
        answers.setdefault(role, {})[f"{Path(golden_file).name}:{item_id}"] = output
    return SimpleNamespace(summary=json.loads(summary.read_text()), answers=answers, stderr=done.stderr)


@pytest.fixture(scope="module")
def hf_side(family):
    """The same items and held-out text through transformers: answers and perplexity."""
    from evalhub.generate import BackendOptions, generate_answers, keep_models_loaded
    from evalhub.golden import load_golden
    from evalhub.perplexity import load_texts, measure_perplexity
    from evalhub.records import DecodingSettings

    answers: dict[str, dict[str, str]] = {}
    with keep_models_loaded():
        for path in (family.single, family.multi):
            got = generate_answers(family.base, family.adapter, load_golden(path), backend="hf",
                                   options=BackendOptions(batch_size=16), settings=DecodingSettings(max_new_tokens=24))
            for role, by_id in got.items():
                answers.setdefault(role, {}).update({f"{path.name}:{i}": g.output for i, g in by_id.items()})
        perplexity = measure_perplexity(family.base, family.adapter,
                                        load_texts(family.world / family.manifest["heldout_general"]), backend="hf")
    return SimpleNamespace(answers=answers, perplexity=perplexity)


def test_the_world_has_the_family_features_and_its_skill(family, toy_manifest):
    from transformers import AutoConfig, AutoTokenizer

    spec = FAMILIES[family.arch]
    assert set(family.manifest) == set(toy_manifest) and family.manifest["arch"] == family.arch
    assert family.manifest["base_general_accuracy"] >= 0.6  # 4 choices: chance is 0.25
    config = AutoConfig.from_pretrained(family.base)
    assert type(config).__name__ == spec.config_class
    for name, value in spec.config.items():
        assert getattr(config, name) == value, name
    tokenizer = AutoTokenizer.from_pretrained(family.base)
    assert tokenizer.chat_template == spec.chat_template and tokenizer.eos_token == spec.eos_token
    from safetensors import safe_open

    with safe_open(str(family.base / "model.safetensors"), framework="pt") as weights:
        keys = set(weights.keys())
    if family.arch == "phi3":  # fused projections
        assert any(".qkv_proj." in k for k in keys) and any(".gate_up_proj." in k for k in keys)
    if family.arch == "qwen2":  # biased q/k/v
        assert any(k.endswith("q_proj.bias") for k in keys)


def test_compare_serves_the_adapter_with_vllm_over_single_and_multi_turn_items(vllm_compare):
    stats = vllm_compare.summary["judge_stats"]
    assert stats["n"] == stats["scored"] == N_SINGLE + N_MULTI
    # The adapter learned the domain's answer format, which the base never produces. (Whether it also copies
    # the words right, which the reference judge rewards, varies by family after the demo's 80 steps.)
    assert "adapter check: the adapter changes the probe's log-likelihood" in vllm_compare.stderr
    assert set(vllm_compare.answers) == {"base", "tuned"}
    assert sum(a.startswith("In Zorvish:") for a in vllm_compare.answers["tuned"].values()) >= 0.75 * stats["n"]
    # (Single-turn items: in a multi-turn item the earlier answer shows the base the format in context.)
    assert not any(a.startswith("In Zorvish:") for key, a in vllm_compare.answers["base"].items()
                   if key.startswith("single.jsonl:"))


def test_generation_through_vllm_and_hf_agree(vllm_compare, hf_side):
    for role in ("base", "tuned"):
        vllm_answers, hf_answers = vllm_compare.answers[role], hf_side.answers[role]
        assert set(vllm_answers) == set(hf_answers)
        same = sum(vllm_answers[key] == hf_answers[key] for key in hf_answers)
        # Greedy decoding in float32: a near-tie may flip between the two libraries' kernels, nothing more.
        assert same >= 0.8 * len(hf_answers), (role, same, len(hf_answers))


def test_perplexity_through_vllm_and_hf_agree_within_one_percent(vllm_compare, hf_side):
    measured = vllm_compare.summary["perplexity"]["general"]
    for role in ("base", "tuned"):
        assert measured[role] == pytest.approx(hf_side.perplexity[role].perplexity, rel=0.01), role


def test_bench_runs_the_local_lm_eval_task(family):
    out = family.folder / "bench.json"
    done = _evalhub("bench", str(family.base), "--adapter", str(family.adapter), "--tasks",
                    family.manifest["task_name"], "--tasks-path", str(family.world / family.manifest["tasks_path"]),
                    "--backend", "hf", "--limit", "12", "--json", str(out), "--db", str(family.folder / "bench.duckdb"),
                    cwd=family.folder)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())[family.manifest["task_name"]]
    assert result["n"] == 12 and result["base"] >= 0.5


def test_lora_on_attention_only_modules_and_qlora_train_and_the_adapter_merges(family, tmp_path, one_torch_thread):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainers.config import toy_settings
    from trainers.merge import merge_adapter
    from trainers.sft import SFTSettings, train_sft

    spec = FAMILIES[family.arch]
    data = write_jsonl(tmp_path / "train.jsonl", read_jsonl(family.world / family.manifest["sft"])[:64])
    attention = train_sft(toy_settings(SFTSettings, base=family.base, data=data, output=tmp_path / "attention",
                                       target_modules=list(spec.attention_modules), max_steps=4, eval_steps=2,
                                       golden=[]))
    config = json.loads((attention / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == sorted(spec.attention_modules)
    metrics = json.loads((attention / "training.json").read_text())["metrics"]
    assert metrics["eval_loss_best"] < metrics["eval_loss_start"]
    qlora = train_sft(toy_settings(SFTSettings, base=family.base, data=data, output=tmp_path / "qlora", qlora=True,
                                   max_steps=3, validation_fraction=0, golden=[]))
    assert json.loads((qlora / "training.json").read_text())["metrics"]["base_4bit_layers"] > 0
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(family.base), qlora)  # loads on the full base
    check = merge_adapter(family.base, family.adapter, tmp_path / "merged")
    assert check.max_abs_diff <= 1e-4
