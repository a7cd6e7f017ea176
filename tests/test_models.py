"""The model layer on the toy world: what each kind of model argument is, the plans and ModelRefs built from
them, the one set of vLLM engine arguments that generation, forgetting and serve share, tokenizers, 4-bit
configs and loading, and release on an interrupt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalhub.errors import UserError
from evalhub.models import (EnginePlan, LoadOptions, Pass, describe_models, engine_args, inspect_model,
                            keep_models_loaded, load_causal_lm, load_tokenizer, loaded, nf4_config, plan_engines,
                            plan_models, describe_named,
                            resolve_backend)
from evalhub.models.session import kept_model
from evalhub.models.vllm_engine import LORA_RANKS, is_cpu_build, lora_rank


@pytest.fixture(scope="module")
def other_base(toy_world, tmp_path_factory) -> Path:
    """A full model folder that is not the toy base: the toy base's files under another name and config."""
    folder = tmp_path_factory.mktemp("other") / "other-base"
    shutil.copytree(toy_world / "base", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    return folder


# ------------------------------------------------------------------------------------ what an argument is


def test_an_adapter_folder_names_its_base_rank_and_modules(toy_world, toy_adapter):
    info = inspect_model(toy_adapter)
    assert (info.kind, info.hub, info.rank, info.path) == ("adapter", False, 16, str(toy_adapter))
    assert info.adapter_base == str(toy_world / "base")
    assert "model.layers.0.self_attn.q_proj" in info.target_modules


def test_a_model_folder_a_hub_id_and_a_served_name(toy_world):
    assert (inspect_model(toy_world / "base").kind, inspect_model(toy_world / "base").hub) == ("full", False)
    hub = inspect_model("org/some-model")
    assert (hub.kind, hub.hub, hub.path) == ("full", True, "org/some-model")
    assert inspect_model("gpt2").hub  # a hub id without an organisation
    served = inspect_model("my-lora", served=True)
    assert (served.kind, served.path) == ("served", "my-lora")
    # A served name is not looked up on disk: a name that is also a folder stays a name.
    assert inspect_model(str(toy_world / "base"), served=True).kind == "served"


def test_bad_arguments_name_the_fix(toy_adapter, tmp_path):
    with pytest.raises(UserError, match="no such model folder; pass an existing model or LoRA adapter folder"):
        inspect_model(tmp_path / "missing")
    with pytest.raises(UserError, match="no such model folder"):
        inspect_model("./relative/missing")
    with pytest.raises(UserError, match="neither adapter_config.json nor config.json"):
        inspect_model(tmp_path)
    pickled = tmp_path / "pickled-adapter"
    pickled.mkdir()
    shutil.copy(toy_adapter / "adapter_config.json", pickled)
    (pickled / "adapter_model.bin").write_bytes(b"")
    with pytest.raises(UserError, match="adapter_model.safetensors is missing; evalhub loads only safetensors"):
        inspect_model(pickled)
    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable .*re-save the adapter"):
        inspect_model(broken)
    with pytest.raises(UserError, match="empty model name"):
        inspect_model(" ", served=True)


def test_plans_put_an_adapter_on_its_base_and_give_a_full_model_its_own_weights(toy_world, toy_adapter, other_base):
    base = str(toy_world / "base")
    assert plan_engines(base, None) == plan_engines(base, "") == [EnginePlan(base, (Pass("base"),))]
    assert plan_engines(base, toy_adapter) == [EnginePlan(base, (Pass("base"), Pass("tuned", str(toy_adapter))))]
    assert plan_engines(base, other_base) == [EnginePlan(base, (Pass("base"),)),
                                              EnginePlan(str(other_base), (Pass("tuned"),))]
    assert plan_engines("base-name", "lora-name", served=True) == [EnginePlan("base-name", (Pass("base"),)),
                                                                   EnginePlan("lora-name", (Pass("tuned"),))]
    # An adapter as the baseline rides on its recorded base.
    assert plan_engines(toy_adapter, None) == [EnginePlan(base, (Pass("base", str(toy_adapter)),))]


def test_adapters_of_one_base_share_one_plan_and_other_bases_load_apart(toy_world, toy_adapter, other_base,
                                                                        tmp_path):
    base = str(toy_world / "base")
    twin = tmp_path / "twin-adapter"
    shutil.copytree(toy_adapter, twin)
    # Two adapters of one base: one load, two LoRA passes (an adapter-vs-adapter compare, an arena).
    assert plan_engines(toy_adapter, twin) == [EnginePlan(base, (Pass("base", str(toy_adapter)),
                                                                 Pass("tuned", str(twin))))]
    arena = plan_models({"a": str(toy_adapter), "b": str(twin), "base": base, "other": str(other_base)})
    assert arena == [EnginePlan(base, (Pass("a", str(toy_adapter)), Pass("b", str(twin)), Pass("base"))),
                     EnginePlan(str(other_base), (Pass("other"),))]
    assert arena[0].adapters == [str(toy_adapter), str(twin)]
    # A model of another base against an adapter: each on its own weights, one after the other.
    assert plan_engines(other_base, toy_adapter) == [EnginePlan(str(other_base), (Pass("base"),)),
                                                     EnginePlan(base, (Pass("tuned", str(toy_adapter)),))]
    # --base: where the adapter's base is now.
    assert plan_engines(other_base, toy_adapter, adapter_base=other_base) == [
        EnginePlan(str(other_base), (Pass("base"), Pass("tuned", str(toy_adapter))))]
    moved = tmp_path / "moved-adapter"
    shutil.copytree(toy_adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/models/gone"}))
    with pytest.raises(UserError, match="trained on /models/gone, which is not a model folder here; pass --base"):
        plan_engines(moved, None)
    assert plan_engines(moved, None, adapter_base=base) == [EnginePlan(base, (Pass("base", str(moved)),))]


# ------------------------------------------------------------------------------------------------ ModelRefs


def test_describe_models_hashes_and_checks_the_pair(toy_world, toy_adapter, other_base):
    import hashlib

    base_ref, tuned_ref = describe_models(str(toy_world / "base"), str(toy_adapter))
    assert (base_ref.kind, tuned_ref.kind) == ("base", "adapter")
    weights = (toy_adapter / "adapter_model.safetensors").read_bytes()
    assert tuned_ref.adapter_hash == hashlib.sha256(weights).hexdigest()
    assert tuned_ref.model_id == f"adapter-{tuned_ref.adapter_hash[:16]}"
    assert tuned_ref.base_path == base_ref.path == str((toy_world / "base").resolve())
    assert base_ref.model_id == f"base-{base_ref.base_hash[:16]}"
    _, full = describe_models(str(toy_world / "base"), str(other_base))
    assert full.kind == "full" and full.base_hash != base_ref.base_hash  # another config, another fingerprint
    assert describe_models(str(toy_world / "base"), str(toy_adapter)) == (base_ref, tuned_ref)  # stable
    served = describe_models("base-name", "lora-name", served=True)
    assert [r.kind for r in served] == ["served", "served"] and served[0].model_id != served[1].model_id


def test_describe_models_records_any_pair_and_refuses_what_is_not_there(toy_world, toy_adapter, other_base, tmp_path):
    # A model of another base against an adapter: the adapter keeps its own base's path and hash.
    baseline, candidate = describe_models(str(other_base), str(toy_adapter))
    assert (baseline.kind, candidate.kind) == ("base", "adapter")
    assert candidate.base_path == str((toy_world / "base").resolve()) != baseline.path
    # Adapter against adapter: both adapters, one base.
    twin = tmp_path / "twin"
    shutil.copytree(toy_adapter, twin)
    first, second = describe_models(str(toy_adapter), str(twin))
    assert (first.kind, second.kind) == ("adapter", "adapter") and first.base_path == second.base_path
    named = describe_named({"a": str(toy_adapter), "base": str(toy_world / "base"), "other": str(other_base)})
    assert [named[k].kind for k in ("a", "base", "other")] == ["adapter", "base", "full"]
    with pytest.raises(UserError, match="not a model folder \\(no config.json\\)"):
        describe_models("org/some-model", str(toy_adapter))
    with pytest.raises(UserError, match="neither a LoRA adapter folder"):
        describe_models(str(toy_world / "base"), str(tmp_path / "twin" / ".."))
    moved = tmp_path / "moved"
    shutil.copytree(toy_adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/models/gone"}))
    with pytest.raises(UserError, match="trained on /models/gone"):
        describe_models(str(toy_world / "base"), str(moved))
    assert describe_models(str(toy_world / "base"), str(moved), adapter_base=str(other_base))[1].base_path == \
        str(other_base.resolve())


# ----------------------------------------------------------------------------------------- vLLM engine args


def test_generation_and_forgetting_give_an_adapter_the_same_lora_settings(toy_world, toy_adapter):
    """One builder: the generation backend's engine, lm-eval's vLLM model in forgetting, and serve."""
    from evalhub.forgetting import ForgettingSettings, vllm_model_args
    from evalhub.generate import BackendOptions

    base, adapter = str(toy_world / "base"), str(toy_adapter)
    generation = engine_args(base, BackendOptions().load_options(), [adapter])
    plan = plan_engines(base, adapter)[0]
    forgetting = vllm_model_args(plan, ForgettingSettings(dtype="auto"))
    lora_keys = ("enable_lora", "max_loras", "max_lora_rank", "lora_target_modules")
    assert {k: generation[k] for k in lora_keys} == {k: forgetting[k] for k in lora_keys} == {
        "enable_lora": True, "max_loras": 2 if is_cpu_build() else 1, "max_lora_rank": 16,
        "lora_target_modules": ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]}
    # Everything else the engine is given is the same too, but for what lm-eval names its own way.
    assert forgetting["pretrained"] == generation["model"] == base and forgetting["lora_local_path"] == adapter
    shared = set(generation) - {"model"}
    assert {k: forgetting[k] for k in shared} == {k: generation[k] for k in shared}
    # Forgetting's settings reach the engine: its dtype, context and seed.
    pinned = vllm_model_args(plan, ForgettingSettings(dtype="bfloat16", max_length=256, seed=7))
    assert (pinned["dtype"], pinned["max_model_len"], pinned["seed"]) == ("bfloat16", 256, 7)
    assert "max_lora_rank" not in vllm_model_args(plan_engines(base, None)[0], ForgettingSettings())


def test_lora_ranks_round_up_to_what_vllm_accepts():
    assert [lora_rank(r) for r in (1, 2, 8, 9, 300, 512)] == [1, 8, 8, 16, 320, 512]
    with pytest.raises(UserError, match="above vLLM's largest .*--backend hf"):
        lora_rank(LORA_RANKS[-1] + 1)


def test_engine_args_from_load_options(toy_world, toy_adapter):
    from evalhub.models import is_cpu_build

    base = str(toy_world / "base")
    args = engine_args(base, LoadOptions(kv_cache_gib=0.5, tensor_parallel_size=2, seed=3, max_model_len=128,
                                         enforce_eager=True, distributed_executor_backend="ray", max_lora_rank=20),
                       [str(toy_adapter)], restrict_lora_modules=False)
    assert args["dtype"] == "float32"  # 'auto': the checkpoint's dtype, not vLLM's half-precision default
    assert (args["seed"], args["max_model_len"], args["enforce_eager"], args["max_lora_rank"]) == (3, 128, True, 32)
    assert args["kv_cache_memory_bytes"] == 2**29 and "gpu_memory_utilization" not in args
    assert "lora_target_modules" not in args  # serve: LoRA may reach every module an adapter names
    assert "enable_lora" not in engine_args(base, LoadOptions())
    with pytest.raises(UserError, match="not a LoRA adapter folder"):
        engine_args(base, LoadOptions(), [base])
    if is_cpu_build():
        assert engine_args(base, LoadOptions())["gpu_memory_utilization"] == 0.3


# ----------------------------------------------------------------------------- tokenizers and hf loading


def test_tokenizer_has_a_pad_token_and_a_missing_model_names_the_flag(toy_world, tmp_path):
    tokenizer = load_tokenizer(toy_world / "base")
    assert tokenizer.pad_token_id is not None
    with pytest.raises(UserError, match="cannot load the base model .*; pass --base a model folder"):
        load_tokenizer(tmp_path / "none", label="the base model", flag="--base")


def test_nf4_config_is_qlora_recipe():
    import torch

    config = nf4_config()
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == (True, "nf4", True)
    expected = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    assert config.bnb_4bit_compute_dtype == expected


def test_causal_lm_with_and_without_its_adapter(toy_world, toy_adapter, tmp_path):
    import torch

    model = load_causal_lm(toy_world / "base", dtype="float32", adapter=str(toy_adapter)).eval()
    assert model.active_adapter == "tuned" and next(model.parameters()).dtype == torch.float32
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.inference_mode():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    plain = load_causal_lm(toy_world / "base", dtype="float32").eval()
    with torch.inference_mode():
        assert torch.allclose(plain(input_ids=ids).logits, base) and not torch.allclose(tuned, base)
    with pytest.raises(UserError, match="unknown dtype 'float8'"):
        load_causal_lm(toy_world / "base", dtype="float8")
    with pytest.raises(UserError, match="cannot load the model"):
        load_causal_lm(tmp_path)


# ------------------------------------------------------------------------------------ backend and release


def test_backend_choice():
    assert resolve_backend("hf") == "hf"
    assert resolve_backend("auto", served=True) == "openai"
    assert resolve_backend("auto", served=True, choices=("vllm", "hf")) != "openai"
    with pytest.raises(UserError, match="unknown backend 'openai'; pass one of auto, vllm, hf"):
        resolve_backend("openai", choices=("vllm", "hf"))


def test_an_interrupt_releases_even_a_kept_model():
    """A model interrupted mid-call (a vLLM engine with requests queued) is closed, not kept for reuse."""
    closed = []
    with keep_models_loaded():
        with loaded("key", lambda: object(), closed.append):
            pass
        kept = kept_model()
        assert kept is not None and not closed
        with pytest.raises(KeyboardInterrupt):
            with loaded("key", lambda: object(), closed.append) as model:
                assert model is kept  # reused
                raise KeyboardInterrupt
        assert closed == [kept] and kept_model() is None
