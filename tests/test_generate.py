"""Generation through transformers + peft on the toy world; choosing a backend; adapter vs full model."""

from __future__ import annotations

import importlib.util

import pytest

from evalhub.errors import UserError
from evalhub.generate import BackendOptions, generate_answers, inspect_model, keep_models_loaded, resolve_backend
from evalhub.golden import load_golden
from evalhub.records import DecodingSettings, GoldenItem

HF = BackendOptions(batch_size=16)


@pytest.fixture(scope="module")
def items(toy_world, toy_manifest) -> list[GoldenItem]:
    return load_golden(toy_world / toy_manifest["golden"])[:24]


@pytest.fixture(scope="module")
def hf_answers(toy_world, toy_adapter, items):
    """Base and tuned answers in batches of 16, plus one prompt far longer than the toy's 512-token context."""
    too_long = GoldenItem(id="too-long", instruction="Translate into Zorvish.", input="river wants water " * 200, output="")
    return generate_answers(toy_world / "base", toy_adapter, [*items[:12], too_long, *items[12:]], DecodingSettings(),
                            backend="hf", options=HF)


def test_inspect_model_tells_adapters_from_full_models(toy_world, toy_adapter, tmp_path):
    adapter = inspect_model(toy_adapter)
    assert (adapter.kind, adapter.rank) == ("adapter", 16)
    assert adapter.adapter_base == str(toy_world / "base")
    assert "model.layers.0.self_attn.q_proj" in adapter.target_modules
    assert inspect_model(toy_world / "base").kind == "full"
    assert inspect_model("org/some-model").kind == "full"  # a hub id
    with pytest.raises(UserError, match="no such model folder"):
        inspect_model(tmp_path / "missing")
    with pytest.raises(UserError, match="neither adapter_config.json nor config.json"):
        inspect_model(tmp_path)


def test_resolve_backend():
    assert resolve_backend("hf") == "hf"
    assert resolve_backend("auto", BackendOptions(base_urls=("http://127.0.0.1:9/v1",))) == "openai"
    assert resolve_backend("auto") == ("vllm" if importlib.util.find_spec("vllm") else "hf")
    with pytest.raises(UserError, match="unknown backend 'tgi'"):
        resolve_backend("tgi")


def test_hf_answers_base_and_tuned_by_id(hf_answers, items):
    assert set(hf_answers) == {"base", "tuned"}
    for role in ("base", "tuned"):
        assert list(hf_answers[role])[:12] == [item.id for item in items[:12]]  # the items' order, by id
        for item in items:
            generation = hf_answers[role][item.id]
            assert (generation.item_id, generation.prompt, generation.status) == (item.id, item.prompt, "ok")
    # The adapter learned the domain's answer format; the base answers with geography.
    tuned_format = sum(hf_answers["tuned"][i.id].output.startswith("In Zorvish:") for i in items)
    base_format = sum(hf_answers["base"][i.id].output.startswith("In Zorvish:") for i in items)
    assert tuned_format >= 0.8 * len(items) and base_format == 0
    assert any(hf_answers["base"][i.id].output.startswith("The ") for i in items)


def test_a_prompt_longer_than_the_context_fails_alone(hf_answers):
    for role in ("base", "tuned"):
        failed = hf_answers[role]["too-long"]
        assert (failed.status, failed.output) == ("failed", None)
        assert "exceeds the context of 512 tokens" in failed.reason
        assert sum(g.status == "ok" for g in hf_answers[role].values()) == len(hf_answers[role]) - 1


def test_batches_with_left_padding_answer_as_one_prompt_at_a_time(toy_world, toy_adapter, items, hf_answers):
    one_by_one = generate_answers(toy_world / "base", toy_adapter, items[:8], backend="hf",
                                  options=BackendOptions(batch_size=1))
    for role in ("base", "tuned"):
        assert {i.id: one_by_one[role][i.id].output for i in items[:8]} == \
               {i.id: hf_answers[role][i.id].output for i in items[:8]}


def test_stop_strings_cut_the_answer(toy_world, toy_adapter, items):
    answers = generate_answers(toy_world / "base", toy_adapter, items[:4], DecodingSettings(stop=(":",)),
                               backend="hf", options=HF)
    assert [answers["tuned"][i.id].output for i in items[:4]] == ["In Zorvish"] * 4


def test_a_full_tuned_model_gets_its_own_weights(toy_world, toy_adapter, items, hf_answers, tmp_path):
    """The adapter merged into a full model answers as the adapter does on the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(toy_world / "base", dtype=torch.float32),
                                       toy_adapter).merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    AutoTokenizer.from_pretrained(toy_world / "base").save_pretrained(tmp_path / "merged")
    answers = generate_answers(toy_world / "base", tmp_path / "merged", items[:6], backend="hf", options=HF)
    agree = sum(answers["tuned"][i.id].output == hf_answers["tuned"][i.id].output for i in items[:6])
    assert agree >= 5  # merging rounds differently, which may flip a near-tie
    assert [answers["base"][i.id].output for i in items[:6]] == [hf_answers["base"][i.id].output for i in items[:6]]


def test_sampling_is_seeded(toy_world, items):
    settings = DecodingSettings(temperature=1.0, top_p=0.9, seed=3, max_new_tokens=12)
    first = generate_answers(toy_world / "base", None, items[:4], settings, backend="hf", options=HF)
    again = generate_answers(toy_world / "base", None, items[:4], settings, backend="hf", options=HF)
    other = generate_answers(toy_world / "base", None, items[:4], DecodingSettings(max_new_tokens=12), backend="hf",
                             options=HF)
    assert first == again and first != other


def test_4bit_base_answers(toy_world, toy_adapter, items):
    answers = generate_answers(toy_world / "base", toy_adapter, items[:4], backend="hf",
                               options=BackendOptions(load_in_4bit=True))
    assert all(g.status == "ok" and g.output for role in answers.values() for g in role.values())


def test_bad_input_is_a_user_error(toy_world, toy_adapter, items, tmp_path):
    # An adapter may be the baseline (it answers on its base), but its base must be found: --base where it moved.
    import json
    import shutil

    moved = tmp_path / "moved-adapter"
    shutil.copytree(toy_adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/models/gone"}))
    with pytest.raises(UserError, match="trained on /models/gone, which is not a model folder here; pass --base"):
        generate_answers(moved, None, items[:1], backend="hf")
    with pytest.raises(UserError, match="ids repeat"):
        generate_answers(toy_world / "base", None, [items[0], items[0]], backend="hf")


def test_models_are_released_after_each_call_unless_kept(toy_world, items):
    from evalhub.models.session import kept_model
    from evalhub.perplexity import measure_perplexity

    generate_answers(toy_world / "base", None, items[:1], backend="hf")
    assert kept_model() is None
    with keep_models_loaded():
        generate_answers(toy_world / "base", None, items[:1], backend="hf")
        kept = kept_model()
        measure_perplexity(toy_world / "base", None, ["The capital of Praloia is Guleinex."], backend="hf")
        assert kept is not None and kept_model() is kept  # loaded once, used twice
    assert kept_model() is None


def test_vllm_engine_arguments(toy_world, toy_adapter):
    """What the vllm backend (and `evalhub serve`, as flags) asks of vLLM, computed without starting it."""
    from evalhub.cli.serve import _flags
    from evalhub.models import engine_args, is_cpu_build

    options = BackendOptions(kv_cache_gib=0.5, tensor_parallel_size=2, distributed_executor_backend="ray")
    args = engine_args(str(toy_world / "base"), options.load_options(), [str(toy_adapter)])
    assert args["dtype"] == "float32"  # 'auto' means the checkpoint's dtype, not vLLM's half-precision default
    assert (args["enable_lora"], args["max_loras"], args["max_lora_rank"]) == (True, 2 if is_cpu_build() else 1, 16)
    assert args["lora_target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert args["kv_cache_memory_bytes"] == 2**29 and "gpu_memory_utilization" not in args
    assert (args["tensor_parallel_size"], args["distributed_executor_backend"]) == (2, "ray")
    assert _flags({"model": "m", "enable_lora": True, "enforce_eager": False, "max_lora_rank": 16}) == \
        ["--model", "m", "--enable-lora", "--max-lora-rank", "16"]

    plain = engine_args(str(toy_world / "base"), BackendOptions(max_lora_rank=20, dtype="bfloat16").load_options(),
                        [str(toy_adapter)])
    assert (plain["max_lora_rank"], plain["dtype"]) == (32, "bfloat16")  # rounded up to a rank vLLM accepts
    if is_cpu_build():
        assert plain["gpu_memory_utilization"] == 0.3  # vLLM's 0.92 would mean 92% of this host's RAM
        with pytest.raises(UserError, match="pass --backend hf for --load-in-4bit"):
            engine_args(str(toy_world / "base"), BackendOptions(load_in_4bit=True).load_options())


# ---------------------------------------------------------------------------- resuming and checkpointing


class Received:
    """on_answers: every batch handed on, by role."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.batches: list[tuple[str, dict]] = []
        self.interrupt_after = interrupt_after

    def __call__(self, role: str, answers: dict) -> None:
        self.batches.append((role, answers))
        if self.interrupt_after is not None and len(self.batches) >= self.interrupt_after:
            raise KeyboardInterrupt

    def ids(self, role: str) -> list[str]:
        return [item_id for r, answers in self.batches if r == role for item_id in answers]


def test_a_resumed_run_answers_only_what_is_missing_and_ends_as_a_one_shot_run(toy_world, toy_adapter, items,
                                                                             hf_answers):
    """hf_answers came in one go; here an earlier attempt got 10 base and 3 tuned answers (the too-long
    item's failure among them), and the rest arrives batch by batch."""
    too_long = GoldenItem(id="too-long", instruction="Translate into Zorvish.", input="river wants water " * 200,
                          output="")
    all_items = [*items[:12], too_long, *items[12:]]
    done = {"base": {i.id: hf_answers["base"][i.id] for i in all_items[:10]},
            "tuned": {i.id: hf_answers["tuned"][i.id] for i in all_items[10:13]}}
    received = Received()
    resumed = generate_answers(toy_world / "base", toy_adapter, all_items, DecodingSettings(), backend="hf",
                               options=BackendOptions(batch_size=8), done=done, on_answers=received)
    for role in ("base", "tuned"):
        missing = [i.id for i in all_items if i.id not in done[role]]
        assert sorted(received.ids(role)) == sorted(missing)  # each missing item exactly once, nothing done again
    assert max(len(answers) for _, answers in received.batches) <= 8  # handed on batch by batch
    assert resumed == hf_answers  # done + new, every role, in the items' order
    assert list(resumed["base"]) == list(hf_answers["base"])


def test_nothing_left_to_do_loads_nothing(toy_world, toy_adapter, hf_answers, items):
    received = Received()
    # An unknown dtype fails as soon as a model is loaded: nothing is.
    again = generate_answers(toy_world / "base", toy_adapter, items, backend="hf",
                             options=BackendOptions(dtype="float8"), done=hf_answers, on_answers=received)
    assert received.batches == [] and again == {role: {i.id: hf_answers[role][i.id] for i in items}
                                                for role in ("base", "tuned")}


def test_an_interrupt_propagates_after_releasing_the_model(toy_world, items):
    import time

    from evalhub.models.session import kept_model

    received = Received(interrupt_after=1)
    with keep_models_loaded():
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            generate_answers(toy_world / "base", None, items[:12], backend="hf", options=BackendOptions(batch_size=4),
                             on_answers=received)
        assert time.monotonic() - start < 60
        assert kept_model() is None  # released even inside keep_models_loaded
    assert [len(answers) for _, answers in received.batches] == [4]  # the first batch was handed on
