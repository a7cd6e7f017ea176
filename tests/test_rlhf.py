"""Reward models and RL on the toy world: `evalhub train rm`, `evalhub rm eval`, `--judge rm:PATH` (compare, a
panel, calibration) and `evalhub train grpo|rloo`, with real TRL, peft and transformers.

The reward model is trained once per session (tests/conftest.py: toy_rm, cached beside the toy world) on the
toy's preference pairs, whose rejected answer has one Zorvish word swapped or is the base's off-task answer;
it is measured here on the pairs its training held out, recomputed from its saved weights.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalhub.errors import UserError
from tests.train_helpers import one_torch_thread, read_jsonl, write_jsonl  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def evalhub(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalhub", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **ONE_THREAD})


@pytest.fixture(scope="module")
def held_out_pairs(toy_rm: Path, toy_world: Path, toy_manifest: dict, tmp_path_factory) -> Path:
    """The preference pairs the reward model never trained on, tagged by phrase length."""
    record = json.loads((toy_rm / "training.json").read_text())
    rows = read_jsonl(toy_world / toy_manifest["dpo"])
    held = [rows[line - 1] for line in record["data"]["validation"]["lines"]]
    for row in held:
        row["tags"] = [f"{len(row['prompt'].split(chr(10))[-1].split())}-words"]
    return write_jsonl(tmp_path_factory.mktemp("rm") / "held_out.jsonl", held)


def test_reward_model_learns_the_toy_preferences(toy_rm: Path, held_out_pairs: Path, tmp_path):
    assert sorted(p.name for p in toy_rm.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "curves.csv", "training.json"]
    config = json.loads((toy_rm / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and "score" in config["modules_to_save"]
    record = json.loads((toy_rm / "training.json").read_text())
    assert record["method"] == "rm" and record["metrics"]["eval_accuracy"] >= 0.8
    assert record["metrics"]["eval_accuracy_start"] < 0.7  # the untrained head is near chance
    with open(toy_rm / "curves.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    evals = [row for row in curve if row["split"] == "eval"]
    assert evals and all(row["accuracy"] for row in evals) and all(row["reward_margin"] for row in evals)

    # Measured again from the saved weights, by the command a user runs.
    summary_path = tmp_path / "rm.json"
    result = evalhub("rm", "eval", str(toy_rm), "--data", str(held_out_pairs), "--json", str(summary_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert {"n", "accuracy", "accuracy_ci", "margin", "by_tag"} <= set(summary)
    assert summary["n"] == 30 and summary["accuracy"] >= 0.8
    assert summary["accuracy"] == pytest.approx(record["metrics"]["eval_accuracy"])  # the trainer's own number
    low, high = summary["accuracy_ci"]
    assert low < summary["accuracy"] < high and summary["margin"] > 0
    assert set(summary["by_tag"]) == {"2-words", "3-words"}
    assert sum(t["n"] for t in summary["by_tag"].values()) == 30
    assert "accuracy" in result.stdout and "3-words" in result.stdout


def test_the_toy_reward_model_learns_on_another_seed():
    """The shipped toy_rm config is not tuned to seed 0: on the world of seed 1 it also ranks the held-out
    pairs at least 0.8 right (each world and its reward model are built once and cached)."""
    from evalhub.toy import build_toy_world
    from tests.conftest import trained_toy_rm

    record = json.loads((trained_toy_rm(build_toy_world(seed=1, quiet=True)) / "training.json").read_text())
    assert record["metrics"]["eval_accuracy"] >= 0.8 and record["metrics"]["eval_accuracy_start"] < 0.7


def test_rm_eval_bad_input_is_one_line_exit_2(toy_adapter: Path, toy_rm: Path, held_out_pairs: Path, tmp_path):
    result = evalhub("rm", "eval", str(tmp_path / "missing"), "--data", str(held_out_pairs), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: RM:")
    result = evalhub("rm", "eval", str(toy_adapter), "--data", str(held_out_pairs), cwd=tmp_path)
    assert result.returncode == 2 and "CAUSAL_LM adapter, not a reward model" in result.stderr
    sft_rows = tmp_path / "sft.jsonl"
    sft_rows.write_text('{"instruction": "a", "output": "b"}\n')
    result = evalhub("rm", "eval", str(toy_rm), "--data", str(sft_rows), "--json", str(tmp_path / "o.json"), cwd=tmp_path)
    assert result.returncode == 2 and "expected a preference pair" in result.stderr
    assert not (tmp_path / "o.json").exists()


def test_reward_model_judges_compare_alone_and_in_a_panel(toy_world, toy_manifest, toy_adapter, toy_rm, tmp_path):
    """The SFT adapter against its base on the toy golden set: the reward model prefers the tuned answers, gives
    every pair one verdict in both orders, never fails to parse, and its rewards are stored per answer."""
    import duckdb

    from evalhub.judge._reward import answer_rewards

    db, summary_path = tmp_path / "s.duckdb", tmp_path / "s.json"
    judge = f"rm:{toy_rm}"
    result = evalhub("compare", str(toy_world / toy_manifest["base"]), str(toy_adapter), "--golden",
                     str(toy_world / toy_manifest["golden"]), "--judge", judge, "--judge", "reference",
                     "--backend", "hf", "--max-new-tokens", "24", "--db", str(db), "--json", str(summary_path),
                     "--report-dir", str(tmp_path / "reports"), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(summary_path.read_text())["judge_stats"]
    rm_stats = stats["judges"][judge]
    assert rm_stats["win_rate"] > 0.7 and rm_stats["parse_failures"] == 0
    assert rm_stats["position_consistency"] == 1.0  # no order: both orders always agree
    assert rm_stats["judge_calls"] <= 200  # each distinct answer scored once
    assert stats["judge_agreement"] is not None
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT item_id, tuned_position, raw_reply, is_canary FROM panel_judgments WHERE judge = ?",
                           [judge]).fetchall()
    rewards = answer_rewards([dict(zip(("item_id", "tuned_position", "raw_reply", "is_canary"), r)) for r in rows])
    assert len(rewards["tuned"]) == len(rewards["base"]) == 100
    assert sum(rewards["tuned"]) / 100 > sum(rewards["base"]) / 100


def test_reward_model_tie_margin_and_calibration(toy_rm: Path, tmp_path):
    """A tie margin wider than any reward gap makes every verdict a tie; calibration runs the rm: judge."""
    from evalhub.judge import JudgeOptions, judge_pairs
    from evalhub.records import Generation, GoldenItem

    items = [GoldenItem(id="a", instruction="Translate into Zorvish.", input="cat sees dog",
                        output="In Zorvish: cat-ka sees-ri dog-ka.")]
    tuned = {"a": Generation("a", items[0].prompt, "In Zorvish: cat-ka sees-ri dog-ka.")}
    base = {"a": Generation("a", items[0].prompt, "In Zorvish: cat-ka sees-ri moon-ka.")}
    judge = f"rm:{toy_rm}"
    options = JudgeOptions(progress=False, cache_path=str(tmp_path / "cache.sqlite"))
    plain = judge_pairs(items, base=base, tuned=tuned, judge=judge, options=options)
    assert [r["verdict"] for r in plain.calls] == ["win", "win"]
    gap = json.loads(plain.calls[0]["raw_reply"])
    from dataclasses import replace

    wide = judge_pairs(items, base=base, tuned=tuned, judge=judge,
                       options=replace(options, rm_tie_margin=abs(gap["reward_a"] - gap["reward_b"]) + 1))
    assert [r["verdict"] for r in wide.calls] == ["tie", "tie"]

    summary_path = tmp_path / "cal.json"
    result = evalhub("judge", "calibrate", "judge_calibration", "--judge", judge, "--json", str(summary_path),
                     "--db", str(tmp_path / "s.duckdb"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["n"] == summary["scored"] == 60 and summary["parse_failures"] == 0
    assert summary["position_consistency"] == 1.0
    result = evalhub("judge", "calibrate", "judge_calibration", "--judge", f"rm:{tmp_path / 'nothing'}", cwd=tmp_path)
    assert result.returncode == 2 and "pass the --output folder of `evalhub train rm`" in result.stderr


def test_grpo_from_the_sft_adapter_keeps_the_golden_win_rate(toy_world, toy_manifest, toy_adapter, tmp_path):
    """GRPO from the demo's SFT adapter with the exact-match reward: the curves record the mean reward and the
    KL to the SFT adapter, and the reference judge finds the result no worse than where it started."""
    output, summary_path = tmp_path / "grpo", tmp_path / "s.json"
    result = evalhub("train", "grpo", "--config", "toy_grpo", "--adapter", str(toy_adapter), "--output", str(output),
                     "--golden", str(toy_world / toy_manifest["golden"]), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(output)
    assert sorted(p.name for p in output.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "curves.csv", "training.json"]
    record = json.loads((output / "training.json").read_text())
    from trainers.rl import _vllm_available

    assert record["method"] == "grpo"
    assert record["metrics"]["generation"] == ("vllm" if _vllm_available() else "transformers")
    with open(output / "curves.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert curve and all(row["reward"] != "" and row["kl"] != "" for row in curve)
    assert any(float(row["reward"]) > 0 for row in curve)  # some sampled answers were exact: a signal to learn
    assert any(float(row["kl"]) > 0 for row in curve)  # the policy moved away from the SFT adapter

    result = evalhub("compare", str(toy_adapter), str(output), "--golden", str(toy_world / toy_manifest["golden"]),
                     "--judge", "reference", "--backend", "hf", "--max-new-tokens", "24", "--db", str(tmp_path / "s.duckdb"),
                     "--json", str(summary_path), "--report-dir", str(tmp_path / "reports"), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(summary_path.read_text())["judge_stats"]
    assert stats["scored"] == 100 and stats["win_rate"] >= 0.5, stats  # the GRPO adapter against the SFT one


def test_rloo_on_a_reward_model_writes_an_adapter(toy_world, toy_manifest, toy_rm, tmp_path):
    from trainers.config import toy_settings
    from trainers.rl import RLOOSettings, train_rloo

    output = train_rloo(toy_settings(RLOOSettings, "toy_grpo", output=tmp_path / "rloo", reward=f"rm:{toy_rm}",
                                     num_generations=4, max_steps=4, logging_steps=2, temperature=0.5, golden=[]))
    record = json.loads((output / "training.json").read_text())
    assert record["method"] == "rloo" and record["config"]["reward"] == f"rm:{toy_rm}"
    with open(output / "curves.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert [row["step"] for row in curve] == ["2", "4"] and all(row["reward"] and row["kl"] for row in curve)
    config = json.loads((output / "adapter_config.json").read_text())
    assert config["task_type"] == "CAUSAL_LM"  # a new LoRA on the base: compare and arena read it


def test_rl_bad_input_is_refused_before_anything_loads(toy_world, toy_manifest, toy_rm, tmp_path):
    from trainers.config import toy_settings
    from trainers.rl import GRPOSettings, train_grpo

    def settings(**overrides):
        return toy_settings(GRPOSettings, "toy_grpo", output=tmp_path / "out", golden=[], **overrides)

    with pytest.raises(UserError, match="unknown reward 'exact'"):
        train_grpo(settings(reward="exact"))
    with pytest.raises(UserError, match="has no function 'nope'"):
        train_grpo(settings(reward="python:evalhub.rewards:nope"))
    with pytest.raises(UserError, match="rm:PATH: .*no such folder"):
        train_grpo(settings(reward=f"rm:{tmp_path / 'none'}"))
    with pytest.raises(UserError, match=r"must be a multiple of num_generations \(6\)"):
        train_grpo(settings(num_generations=6))
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text('{"text": "no prompt"}\n')
    with pytest.raises(UserError, match=f"{prefs}:1: no prompt"):
        train_grpo(settings(data=prefs))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefs.jsonl"]  # nothing half-written
    result = evalhub("train", "grpo", "--config", "toy_grpo", "--reward", "python:nomodule:f", "--output",
                     str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        "error: --reward python:nomodule:f: cannot import nomodule")
