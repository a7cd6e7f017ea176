"""Evaluation inside training on the toy world: the win rate against the base at validation steps, the
checkpoint chosen by it, each step's checkpoint kept and ranked by an arena, a judge that fails or runs out of
budget mid-training, and the settings refused before anything loads."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evalhub.errors import UserError
from tests.fake_openai import FakeOpenAI, http_error
from tests.train_helpers import one_torch_thread  # noqa: F401 - a fixture
from trainers.config import toy_settings
from trainers.sft import SFTSettings, train_sft

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "golden_sets" / "toy_zorvish.jsonl"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    left, right = _tensors(a), _tensors(b)
    return left.keys() == right.keys() and all(bool((left[k] == right[k]).all()) for k in left)


def _golden_rows(output: Path) -> list[dict]:
    with (output / "curves.csv").open() as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == "eval" and row["win_rate"]]


@pytest.fixture(scope="module")
def cli_run(toy_world, toy_manifest, tmp_path_factory):
    """`evalhub train sft --eval-golden` with the reference judge, validation every 10 steps, the golden
    evaluation and the toy's general task every 20, the checkpoint chosen by win rate and every validation
    step's checkpoint kept."""
    folder = tmp_path_factory.mktemp("golden-eval")
    output = folder / "adapter"
    result = subprocess.run(
        [sys.executable, "-m", "evalhub", "train", "sft", "--config", str(REPO / "trainers/configs/toy_sft.yaml"),
         "--output", str(output), "--max-steps", "80", "--eval-steps", "10", "--eval-every", "20",
         "--eval-golden", str(GOLDEN), "--eval-judge", "reference", "--eval-items", "20",
         "--eval-tasks", toy_manifest["task_name"], "--eval-tasks-path", str(toy_world / toy_manifest["tasks_path"]),
         "--eval-limit", "40", "--select-by", "win_rate", "--save-checkpoints", "--db", str(folder / "store.duckdb")],
        capture_output=True, text=True, cwd=folder, timeout=900, env={**os.environ, **ONE_THREAD})
    assert result.returncode == 0, result.stderr[-3000:]
    return result, output, folder


def test_the_win_rate_is_recorded_at_each_golden_evaluation_and_rises(cli_run):
    result, output, _ = cli_run
    record = json.loads((output / "training.json").read_text())
    golden = record["golden_eval"]
    assert golden["judge"] == "reference" and len(golden["items"]) == 20 and golden["every"] == 20
    steps = golden["steps"]
    assert [s["step"] for s in steps] == [0, 20, 40, 60, 80]  # every 20 steps, not at each validation (10)
    assert all(s["n"] == 20 and s["parse_failures"] == 0 for s in steps)
    assert all(s["win_rate_lower"] <= s["win_rate"] <= s["win_rate_upper"] for s in steps)
    # Step 0 is the base against itself: every answer the same, a tie each.
    assert steps[0]["win_rate"] == 0.5 and steps[0]["ties"] == 20
    assert steps[-1]["win_rate"] > steps[0]["win_rate"]
    # curves.csv carries the same numbers on its eval rows, and nothing on the rows without an evaluation.
    rows = _golden_rows(output)
    assert [int(r["step"]) for r in rows] == [0, 20, 40, 60, 80]
    assert [float(r["win_rate"]) for r in rows] == [s["win_rate"] for s in steps]
    assert [float(r["win_rate_lower"]) for r in rows] == [s["win_rate_lower"] for s in steps]
    assert "win rate against the base (reference, 20 items): 0.500 at step 0" in result.stderr


def test_forgetting_is_watched_as_it_happens(cli_run, toy_manifest):
    """The toy's general task, scored on the model being trained: the base's accuracy at step 0 (the toy
    world's recorded one), and a drop by the end while the win rate rose: forgetting, seen when it happens."""
    result, output, _ = cli_run
    record = json.loads((output / "training.json").read_text())
    column = f"acc_{toy_manifest['task_name']}"
    tasks = record["task_eval"]
    assert tasks["tasks"] == [toy_manifest["task_name"]] and tasks["limit"] == 40 and tasks["every"] == 20
    accuracy = {s["step"]: s[column] for s in tasks["steps"]}
    assert sorted(accuracy) == [0, 20, 40, 60, 80]
    assert accuracy[0] == toy_manifest["base_general_accuracy"]
    assert accuracy[80] < accuracy[0]
    # The same numbers beside the win rate, in training.json's golden steps and in curves.csv.
    assert {s["step"]: s[column] for s in record["golden_eval"]["steps"]} == accuracy
    assert {int(r["step"]): float(r[column]) for r in _golden_rows(output)} == accuracy
    assert f"{toy_manifest['task_name']} accuracy: {accuracy[0]:.3f} at step 0" in result.stderr


def test_select_by_win_rate_keeps_the_checkpoint_of_the_best_recorded_win_rate(cli_run):
    _, output, _ = cli_run
    record = json.loads((output / "training.json").read_text())
    steps = [s for s in record["golden_eval"]["steps"] if s["step"] > 0]
    losses = {int(r["step"]): float(r["loss"]) for r in csv.DictReader((output / "curves.csv").open())
              if r["split"] == "eval"}
    # The documented order: win rate, then the CI's lower bound, then the lower validation loss.
    best = max(steps, key=lambda s: (s["win_rate"], s["win_rate_lower"], -losses[s["step"]]))
    assert record["selection"] == {"by": "win_rate", "step": best["step"], "value": best["win_rate"]}
    assert record["metrics"]["best_step"] == best["step"]
    # The adapter written is that step's weights, as its kept checkpoint holds them.
    assert _same_weights(output, output / f"checkpoint-{best['step']}")


def test_every_validation_step_has_its_checkpoint_and_an_arena_ranks_them(cli_run, tmp_path):
    _, output, _ = cli_run
    kept = sorted((p.name for p in output.glob("checkpoint-*")), key=lambda n: int(n.split("-")[1]))
    assert kept == [f"checkpoint-{s}" for s in range(10, 81, 10)]
    for name in kept:
        config = json.loads((output / name / "adapter_config.json").read_text())
        assert Path(config["base_model_name_or_path"]).name == "base"
    assert not _same_weights(output / "checkpoint-20", output / "checkpoint-80")
    # Ten golden items are enough to tell an early checkpoint from the last (20 steps against 80).
    golden = tmp_path / "ten.jsonl"
    golden.write_text("".join(GOLDEN.read_text().splitlines(keepends=True)[:10]))
    summary = tmp_path / "arena.json"
    result = subprocess.run(
        [sys.executable, "-m", "evalhub", "arena", str(output / "checkpoint-20"), str(output / "checkpoint-80"),
         "--golden", str(golden), "--judge", "reference", "--db", str(tmp_path / "store.duckdb"),
         "--json", str(summary)], capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env={**os.environ, **ONE_THREAD})
    assert result.returncode == 0, result.stderr[-3000:]
    ratings = json.loads(summary.read_text())["ratings"]  # best first
    assert [Path(r["model"]).name for r in ratings] == ["checkpoint-80", "checkpoint-20"]
    assert ratings[0]["rank"] == 1 and ratings[0]["rating"] > ratings[1]["rating"]


# ---------------------------------------------------------------------------- a scripted judge over HTTP

_SECTION = r"<<<{tag} (\S+)>>>\n(.*?)\n<<<END OF {tag} \1>>>"


def _section(text: str, tag: str) -> str:
    found = re.search(_SECTION.format(tag=tag), text, re.S)
    assert found, f"no {tag} in the judge's prompt"
    return found.group(2).strip()


def contrarian_verdict(body: dict) -> str:
    """A judge that prefers the answer NOT in the toy domain's form ("In Zorvish: ..."): the better the model
    learns the domain, the lower its win rate, so the win rate's choice of checkpoint differs from the loss's."""
    prompt = "\n".join(str(m.get("content", "")) for m in body["messages"])
    a_domain, b_domain = (_section(prompt, f"ANSWER {side}").startswith("In Zorvish:") for side in "AB")
    label = "B" if a_domain and not b_domain else "A" if b_domain and not a_domain else "tie"
    return json.dumps({"verdict": label, "reason": "scripted: the answer outside the domain's form"})


def _train(toy_world, toy_manifest, output: Path, **overrides) -> dict:
    settings = toy_settings(SFTSettings, "toy_sft", base=toy_world / toy_manifest["base"],
                            data=toy_world / toy_manifest["sft"], output=output, golden=[],
                            **{"max_steps": 60, "eval_steps": 20, "eval_golden": GOLDEN, "eval_items": 12,
                               **overrides})
    train_sft(settings)
    return json.loads((output / "training.json").read_text())


@pytest.fixture()
def openai_endpoint(monkeypatch):
    def point_at(server: FakeOpenAI) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)

    return point_at


def test_a_judge_that_disagrees_with_the_loss_chooses_an_earlier_checkpoint(toy_world, toy_manifest, tmp_path,
                                                                            openai_endpoint):
    with FakeOpenAI(reply=contrarian_verdict) as server:
        openai_endpoint(server)
        record = _train(toy_world, toy_manifest, tmp_path / "adapter", eval_judge="openai:fake-judge",
                        select_by="win_rate", save_checkpoints=True)
    assert server.chat_requests  # judged over HTTP, blind, in both orders
    steps = {s["step"]: s for s in record["golden_eval"]["steps"]}
    assert sorted(steps) == [0, 20, 40, 60]
    losses = {int(r["step"]): float(r["loss"]) for r in csv.DictReader((tmp_path / "adapter/curves.csv").open())
              if r["split"] == "eval" and int(r["step"]) > 0}
    lowest_loss = min(losses, key=losses.get)
    chosen = record["selection"]["step"]
    assert chosen != lowest_loss, steps  # the win rate, not the loss, chose
    assert steps[chosen]["win_rate"] == max(s["win_rate"] for k, s in steps.items() if k > 0)
    assert steps[chosen]["win_rate"] > steps[lowest_loss]["win_rate"]
    assert _same_weights(tmp_path / "adapter", tmp_path / "adapter" / f"checkpoint-{chosen}")


def test_patience_follows_the_win_rate_when_it_selects(toy_world, toy_manifest, tmp_path, openai_endpoint):
    """With --select-by win_rate, --patience counts golden evaluations without a better win rate (not loss
    rises): the contrarian judge's best is an early step, so training stops one evaluation later."""
    with FakeOpenAI(reply=contrarian_verdict) as server:
        openai_endpoint(server)
        record = _train(toy_world, toy_manifest, tmp_path / "adapter", eval_judge="openai:fake-judge",
                        select_by="win_rate", patience=1, max_steps=80)
    steps = {s["step"]: s["win_rate"] for s in record["golden_eval"]["steps"]}
    chosen = record["selection"]["step"]
    metrics = record["metrics"]
    assert metrics["stopped_early"] and metrics["steps"] < 80
    assert max(steps) == metrics["steps"] == chosen + 20  # one evaluation past the best, then stopped
    assert metrics["stop_reason"].startswith(f"the win rate has not beaten {steps[chosen]:.3f} (step {chosen})")


def test_a_judge_that_fails_is_recorded_on_each_step_and_training_goes_on(toy_world, toy_manifest, tmp_path,
                                                                          openai_endpoint):
    with FakeOpenAI(reply=lambda body: http_error(400, "model fake-judge does not exist")) as server:
        openai_endpoint(server)
        record = _train(toy_world, toy_manifest, tmp_path / "adapter", eval_judge="openai:fake-judge")
    steps = record["golden_eval"]["steps"]
    # Step 0 compares the base with itself: identical answers are ties without a call. Later steps fail.
    assert steps[0]["win_rate"] == 0.5
    assert [s["step"] for s in steps[1:]] == [20, 40, 60] and all("eval_error" in s for s in steps[1:])
    assert "fake-judge" in steps[1]["eval_error"]
    assert record["metrics"]["steps"] == 60 and (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert record["selection"]["by"] == "loss"
    rows = list(csv.DictReader((tmp_path / "adapter/curves.csv").open()))
    assert [r["win_rate"] for r in rows if r["split"] == "eval"] == ["0.5", "", "", ""]


def test_max_cost_covers_the_whole_run_and_later_steps_say_it_is_spent(toy_world, toy_manifest, tmp_path,
                                                                       openai_endpoint):
    """gpt-4.1 is priced (USD 2 / 8 per million tokens); the fake server's token counts are a fixed function
    of the text, so one step's judging costs a few thousandths of a dollar: a budget of 0.002 runs out."""
    with FakeOpenAI(reply=contrarian_verdict) as server:
        openai_endpoint(server)
        record = _train(toy_world, toy_manifest, tmp_path / "adapter", eval_judge="openai:gpt-4.1",
                        eval_max_cost=0.002)
    golden = record["golden_eval"]
    assert golden["max_cost"] == 0.002 and golden["cost_usd"] <= 0.002
    errors = [s for s in golden["steps"] if "eval_error" in s]
    assert errors, golden["steps"]  # the budget ran out before the last step
    assert all("max-cost" in s["eval_error"] or "budget" in s["eval_error"] for s in errors)
    assert record["metrics"]["steps"] == 60


def test_eval_baseline_compares_against_another_adapter(toy_world, toy_manifest, toy_adapter, tmp_path):
    """--eval-baseline: the demo's trained adapter answers once before training, and the model being trained
    is judged against it: at step 0 (the bare base) it loses, where against its own base it ties."""
    record = _train(toy_world, toy_manifest, tmp_path / "adapter", eval_judge="reference",
                    eval_baseline=str(toy_adapter), max_steps=20)
    golden = record["golden_eval"]
    assert golden["baseline"] == str(toy_adapter)
    first = golden["steps"][0]
    assert first["step"] == 0 and first["win_rate"] < 0.5 and first["losses"] > 0


def test_a_missing_eval_baseline_is_refused_before_training(toy_world, toy_manifest, tmp_path):
    with pytest.raises(UserError, match="--eval-baseline .*no such folder and no such tag"):
        _train(toy_world, toy_manifest, tmp_path / "adapter", eval_judge="reference",
               eval_baseline=str(tmp_path / "nothing-here"))
    assert not (tmp_path / "adapter").exists()


def test_grpo_judges_every_eval_every_steps_against_where_it_started(toy_world, toy_manifest, toy_adapter, tmp_path):
    """RL has no validation steps: the golden evaluation runs at step 0 and every --eval-every training
    steps. GRPO from the demo's adapter, judged against that adapter (--eval-baseline): at step 0 they are the
    same model, a tie on every item; the numbers go on the curve's training rows of those steps."""
    output = tmp_path / "grpo"
    result = subprocess.run(
        [sys.executable, "-m", "evalhub", "train", "grpo", "--config", "toy_grpo", "--adapter", str(toy_adapter),
         "--output", str(output), "--max-steps", "10", "--eval-golden", str(GOLDEN), "--eval-judge", "reference",
         "--eval-every", "5", "--eval-items", "8", "--eval-baseline", str(toy_adapter),
         "--db", str(tmp_path / "store.duckdb")],
        capture_output=True, text=True, cwd=tmp_path, timeout=900, env={**os.environ, **ONE_THREAD})
    assert result.returncode == 0, result.stderr[-3000:]
    golden = json.loads((output / "training.json").read_text())["golden_eval"]
    assert golden["baseline"] == str(toy_adapter) and golden["every"] == 5
    steps = golden["steps"]
    assert [s["step"] for s in steps] == [0, 5, 10] and all(s["n"] == 8 for s in steps)
    assert steps[0]["win_rate"] == 0.5 and steps[0]["ties"] == 8
    rows = {int(r["step"]): r for r in csv.DictReader((output / "curves.csv").open())}
    assert [float(rows[s]["win_rate"]) for s in (5, 10)] == [steps[1]["win_rate"], steps[2]["win_rate"]]
    assert rows[5]["reward"] != ""  # beside the RL curve's own columns


def test_rl_refuses_selection_by_win_rate(toy_world, toy_manifest, tmp_path):
    from trainers.rl import GRPOSettings, train_grpo

    settings = toy_settings(GRPOSettings, "toy_grpo", output=tmp_path / "out", golden=[], eval_golden=GOLDEN,
                            select_by="win_rate")
    with pytest.raises(UserError, match="--select-by win_rate and --save-checkpoints are for `evalhub train sft|dpo`"):
        train_grpo(settings)


@pytest.mark.parametrize("overrides, message", [
    (dict(select_by="win_rate"), "--select-by win_rate needs a win rate: pass --eval-golden FILE"),
    (dict(select_by="accuracy"), "select_by must be loss or win_rate"),
    (dict(eval_golden=GOLDEN, eval_every=15, eval_steps=10), "--eval-every 15 must be a multiple of --eval-steps"),
    (dict(eval_golden=GOLDEN, eval_max_cost=0.0), "--max-cost must be a positive number of USD"),
    (dict(eval_golden=GOLDEN, validation_fraction=0.0), "--eval-golden runs at validation steps"),
    (dict(save_checkpoints=True, validation_fraction=0.0), "save_checkpoints keeps the weights of each validation"),
])
def test_bad_golden_evaluation_settings_are_refused_before_anything_loads(toy_world, toy_manifest, tmp_path,
                                                                          overrides, message):
    settings = toy_settings(SFTSettings, "toy_sft", base=toy_world / toy_manifest["base"],
                            data=toy_world / toy_manifest["sft"], output=tmp_path / "adapter", golden=[],
                            **overrides)
    with pytest.raises(UserError, match=re.escape(message)):
        train_sft(settings)
    assert not (tmp_path / "adapter").exists()


def test_rm_refuses_the_golden_evaluation(toy_world, toy_manifest, tmp_path):
    from trainers.reward import RMSettings, train_rm

    settings = toy_settings(RMSettings, "toy_rm", base=toy_world / toy_manifest["base"],
                            data=toy_world / toy_manifest["dpo"], output=tmp_path / "rm", golden=[],
                            eval_golden=GOLDEN)
    with pytest.raises(UserError, match="are for `evalhub train sft|dpo`"):
        train_rm(settings)
