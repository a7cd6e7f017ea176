"""The vllm: judge: an open judge model run in-process by vLLM (the CPU build) on the toy world's base model.

The toy model knows nothing about judging, so its verdicts mean nothing; what is tested is that structured
output makes every reply parse, that the calls of a turn go to vLLM as one batch, that the cache spares a
re-run the engine, that a prompt longer than the judge's context is an unscored call rather than a crash,
and that the engine is released. One engine start serves the whole module (keep_models_loaded).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evalhub.errors import UserError
from evalhub.golden import load_golden
from evalhub.judge import JudgeOptions, check_judge, judge_pairs
from evalhub.judge._protocol import PairRequest, parse_verdict
from evalhub.judge._registry import make_judge
from evalhub.models import keep_models_loaded
from evalhub.models.session import kept_model
from evalhub.records import Generation

REPO = Path(__file__).resolve().parents[1]
WRONG = "The capital of Praloia is Guleinex."
# The toy model's context is 512 tokens and the judge prompt alone is about 900 of its tokens: RoPE runs past
# the trained length (meaningless, but this test is about the reply's form), with a small KV cache.
TOY_ENGINE = {"hf_overrides": {"max_position_embeddings": 2048}, "max_model_len": 2048,
              "kv_cache_memory_bytes": 2**28, "enforce_eager": True}
REPLY_TOKENS = 64   # the verdict's JSON and a short reason


@pytest.fixture(scope="module")
def judge(toy_world, toy_manifest) -> str:
    return f"vllm:{toy_world / toy_manifest['base']}"


def options(tmp_path, **given) -> JudgeOptions:
    return JudgeOptions(**{"cache_path": str(tmp_path / "cache.sqlite"), "max_completion_tokens": REPLY_TOKENS,
                           "vllm_args": TOY_ENGINE, "progress": False, **given})


def answers(items, text=None):
    return {i.id: Generation(i.id, i.prompt, i.output if text is None else text) for i in items}


def test_every_reply_parses_in_one_batch_and_the_engine_is_released(judge, tmp_path):
    items = load_golden(REPO / "golden_sets" / "toy_zorvish.jsonl")[:3]
    with keep_models_loaded():  # one engine for the three parts below
        outcome = judge_pairs(items, answers(items, WRONG), answers(items), judge, options(tmp_path, canaries=1))
        stats = outcome.stats
        assert stats["parse_failures"] == 0 and stats["extra"]["canary_parse_failures"] == 0
        assert all(r["status"] == "ok" and r["verdict"] in {"win", "loss", "tie"} for r in outcome.judgments)
        for row in outcome.judgments:
            reply = json.loads(row["raw_reply"])            # the whole reply is the JSON object
            assert set(reply) == {"verdict", "reason"} and len(reply["reason"]) <= REPLY_TOKENS
            assert 0 < row["completion_tokens"] <= REPLY_TOKENS and row["prompt_tokens"] > 0
        assert stats["judge_calls"] == 8 and stats["cost_usd"] == 0.0
        assert stats["extra"]["structured_output"] is True

        # A re-run is answered by the cache alone.
        again = judge_pairs(items, answers(items, WRONG), answers(items), judge, options(tmp_path, canaries=1))
        assert again.stats["judge_calls"] == 0 and again.stats["extra"]["cached_replies_used"] == 8
        assert [r["raw_reply"] for r in again.judgments] == [r["raw_reply"] for r in outcome.judgments]

        # The calls of one turn are one llm.chat; a prompt past the judge's context is an unscored call.
        too_long = " ".join(["river"] * 3000)
        requests = [PairRequest(item.prompt, None, item.output, f"{WRONG} ({n})") for n, item in enumerate(items)]
        requests.append(PairRequest(items[0].prompt, None, too_long, WRONG))
        direct = make_judge(judge, options(tmp_path / "direct"), [])

        async def ask_all():
            try:
                return await asyncio.gather(*(direct.judge_pair(r) for r in requests))
            finally:
                await direct.aclose()
        try:
            outcomes = asyncio.run(ask_all())
        finally:
            direct.close()
        assert direct.provider.batches == 1 and direct.calls == 3
        assert [o.status for o in outcomes] == ["ok", "ok", "ok", "api_error"]
        assert all(parse_verdict(o.raw_reply).label is not None for o in outcomes[:3])
        assert "longer than" not in outcomes[0].reason and "more than the judge model's context of 2048" in outcomes[3].reason
        assert kept_model() is not None      # kept for reuse inside the block...
    assert kept_model() is None              # ...and shut down when it ends


def test_bad_vllm_judges_are_user_errors_before_anything_loads(tmp_path, judge):
    with pytest.raises(UserError, match="no such model folder"):
        check_judge(f"vllm:{tmp_path / 'missing'}", JudgeOptions(cache_path=str(tmp_path / "c.sqlite")))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x", "r": 8}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="merge it first"):
        check_judge(f"vllm:{adapter}", JudgeOptions(cache_path=str(tmp_path / "c.sqlite")))
    with pytest.raises(UserError, match="max_completion_tokens of at least"):
        check_judge(judge, JudgeOptions(cache_path=str(tmp_path / "c.sqlite"), max_completion_tokens=20))
    check_judge(judge, JudgeOptions(cache_path=str(tmp_path / "c.sqlite")))   # a model folder: fine, and not loaded
    assert kept_model() is None
