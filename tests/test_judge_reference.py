"""The offline reference judge: deterministic, order-blind, fooled neither by null nor by constant answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.golden import load_golden
from evalhub.judge import JudgeOptions, judge_pairs
from evalhub.records import GoldenItem, Generation

REPO = Path(__file__).resolve().parents[1]
NULL_ANSWERS = ["", "I don't know.", "I'm sorry, I can't help with that."]


@pytest.fixture(scope="module", params=["toy_zorvish", "general_assistant"])
def golden(request):
    return load_golden(REPO / "golden_sets" / f"{request.param}.jsonl")


def answers(items, texts):
    return {i.id: Generation(i.id, i.prompt, text) for i, text in zip(items, texts)}


def judged(items, tuned_texts, base_texts, **options):
    return judge_pairs(items, base=answers(items, base_texts), tuned=answers(items, tuned_texts), judge="reference",
                       options=JudgeOptions(**options), golden_file="g.jsonl")


@pytest.mark.parametrize("null", NULL_ANSWERS)
def test_a_constant_null_answer_never_comes_out_ahead(golden, null):
    ideal = [i.output for i in golden]
    shifted = ideal[1:] + ideal[:1]             # fluent, well-formed answers to the wrong question
    nulls = [null] * len(golden)
    against_ideal = judged(golden, nulls, ideal).stats
    assert against_ideal["wins"] == 0 and against_ideal["losses"] == len(golden)
    against_wrong = judged(golden, nulls, shifted).stats
    assert against_wrong["win_rate"] <= 0.5 and against_wrong["wins"] <= 1


def test_a_constant_template_answer_gains_nothing_from_what_all_references_share():
    items = load_golden(REPO / "golden_sets" / "toy_zorvish.jsonl")
    template = ["In Zorvish:::."] * len(items)             # the format of every ideal answer, and no content
    off_topic = ["The capital of Praloia is Guleinex."] * len(items)
    stats = judged(items, template, off_topic).stats
    assert stats["wins"] <= 3 and stats["win_rate"] < 0.53
    assert judged(items, template, [i.output for i in items]).stats["wins"] == 0


def test_verdicts_are_deterministic_and_blind_to_order(golden):
    ideal = [i.output for i in golden]
    shifted = ideal[3:] + ideal[:3]
    first = judged(golden, shifted, ideal)
    second = judged(golden, shifted, ideal)
    assert first.judgments == second.judgments
    assert first.stats["position_consistency"] == 1.0
    assert first.stats["judge_calls"] == 0 and first.stats["cost_usd"] == 0.0
    reply = json.loads(first.judgments[0]["raw_reply"])
    assert reply["verdict"] in {"A", "B", "tie"} and "chrF" in reply["reason"]


def test_the_better_translation_wins_on_the_toy_worlds_preference_pairs(toy_world, toy_manifest):
    """DPO pairs: the chosen translation has every word right, the rejected one a word wrong or off the task."""
    rows = [json.loads(line) for line in (toy_world / toy_manifest["dpo"]).read_text().splitlines()[:60]]
    items = [GoldenItem(id=f"dpo-{n}", instruction=row["prompt"], output=row["chosen"]) for n, row in enumerate(rows)]
    stats = judged(items, [r["chosen"] for r in rows], [r["rejected"] for r in rows]).stats
    assert stats["wins"] >= 0.9 * len(items) and stats["losses"] == 0
    assert stats["win_rate_ci"][0] > 0.5 and stats["p_value"] < 1e-6
    reverse = judged(items, [r["rejected"] for r in rows], [r["chosen"] for r in rows]).stats
    assert reverse["losses"] == stats["wins"]


def test_canaries_show_the_reference_judge_works(golden):
    ideal = [i.output for i in golden]
    stats = judged(golden, ideal, ideal, canaries=5).stats
    assert stats["canary_accuracy"] == 1.0
    assert stats["ties"] == len(golden) and stats["win_rate"] == 0.5
