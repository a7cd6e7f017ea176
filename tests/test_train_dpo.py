"""DPO on the toy world's preference pairs: the held-out reward margin (chosen over rejected) rises, measured
here against the base with the adapter disabled, which is also the reference the trainer used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train_helpers import completion_nll, one_torch_thread, read_jsonl  # noqa: F401 (fixture)
from trainers.config import load_settings
from trainers.dpo import DPOSettings, train_dpo

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_dpo_raises_the_held_out_reward_margin(toy_world, toy_manifest, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = load_settings(DPOSettings, REPO / "trainers" / "configs" / "toy_dpo.yaml",
                             {"output": str(tmp_path / "dpo"), "max_steps": 20, "eval_steps": 10})
    output = train_dpo(settings, db=tmp_path / "store.duckdb")
    assert sorted(p.name for p in output.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "curves.csv", "training.json"]
    record = json.loads((output / "training.json").read_text())
    metrics = record["metrics"]
    assert record["method"] == "dpo" and metrics["eval_reward_margin_start"] == 0.0  # policy == reference at start

    # The margin of the saved adapter on the held-out pairs, computed here: beta * ((log pi - log ref)(chosen)
    # - (log pi - log ref)(rejected)), with the reference the base itself (adapter disabled).
    rows = read_jsonl(toy_world / toy_manifest["dpo"])
    held_out = [rows[line - 1] for line in record["data"]["validation"]["lines"]]
    tokenizer = AutoTokenizer.from_pretrained(toy_world / "base")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(toy_world / "base"), output).eval()

    def logp(row: dict, answer: str) -> float:
        return -completion_nll(model, tokenizer, row["prompt"], answer)[0]

    policy = [(logp(r, r["chosen"]), logp(r, r["rejected"])) for r in held_out]
    with model.disable_adapter():
        reference = [(logp(r, r["chosen"]), logp(r, r["rejected"])) for r in held_out]
    margins = [settings.beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(policy, reference)]
    mean_margin = sum(margins) / len(margins)
    assert mean_margin > 0.5
    assert sum(m > 0 for m in margins) > len(margins) / 2  # more held-out pairs ranked right than wrong
    # The trainer logged the same number for the best step (it averages per-batch means): the best step was kept.
    size = settings.batch_size
    batch_means = [sum(margins[i:i + size]) / len(margins[i:i + size]) for i in range(0, len(margins), size)]
    assert sum(batch_means) / len(batch_means) == pytest.approx(metrics["eval_reward_margin_best"], abs=1e-4)
