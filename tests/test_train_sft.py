"""SFT on the toy world: the CLI from a YAML config, what the adapter learned (measured here, not read from
the trainer's logs), the overfitting watch, seeds, QLoRA, full fine-tuning, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from evalhub.errors import UserError
from tests.train_helpers import greedy_answers, mean_completion_nll, one_torch_thread, read_jsonl, write_jsonl
from trainers.config import toy_settings
from trainers.sft import SFTSettings, train_sft

REPO = Path(__file__).resolve().parents[1]
PICKLES = (".bin", ".pt", ".pth", ".pkl", ".pickle")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # see one_torch_thread

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cli_run(toy_world, tmp_path_factory):
    """`evalhub train sft` from the shipped toy config, flags overriding it, as a user runs it."""
    folder = tmp_path_factory.mktemp("cli-sft")
    output, db = folder / "adapter", folder / "store.duckdb"
    result = subprocess.run(
        [sys.executable, "-m", "evalhub", "train", "sft", "--config", str(REPO / "trainers/configs/toy_sft.yaml"),
         "--output", str(output), "--max-steps", "20", "--eval-steps", "10", "--db", str(db)],
        capture_output=True, text=True, cwd=folder, timeout=600, env={**os.environ, **ONE_THREAD})
    assert result.returncode == 0, result.stderr[-3000:]
    return result, output, db


def test_cli_writes_adapter_record_curves_and_store_rows(cli_run, toy_world, toy_manifest):
    result, output, db = cli_run
    assert result.stdout.strip() == str(output)  # results on stdout; the trainer's logs went to stderr
    assert sorted(p.name for p in output.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "curves.csv", "training.json"]
    record = json.loads((output / "training.json").read_text())
    data = toy_world / toy_manifest["sft"]
    assert record["method"] == "sft" and record["seed"] == 0
    assert record["config"]["max_steps"] == 20 and record["config"]["lora_r"] == 16  # flag, then YAML
    assert record["data"]["train"]["sha256"] == _sha256(data)
    assert record["data"]["train"]["rows"] + record["data"]["validation"]["rows"] == len(read_jsonl(data))
    assert {"torch", "transformers", "peft", "trl"} <= set(record["versions"])
    assert record["adapter_sha256"] == _sha256(output / "adapter_model.safetensors")
    metrics = record["metrics"]
    # Validation (held-out domain rows) loss fell from the base's.
    assert metrics["steps"] == 20 and metrics["eval_loss_best"] < metrics["eval_loss_start"] - 2
    curves = (output / "curves.csv").read_text().splitlines()
    assert curves[0] == "step,split,loss,perplexity,reward_margin" and curves[1].startswith("0,eval,")

    from evalhub.store import read_connection

    with read_connection(db) as con:
        assert con.execute("SELECT adapter_hash, method FROM training_runs").fetchall() == [
            (record["adapter_sha256"], "sft")]
        assert con.execute("SELECT count(*) FROM training_curves").fetchone()[0] == len(curves) - 1
        assert con.execute("SELECT loss FROM training_curves WHERE step = 20 AND split = 'eval'"
                           ).fetchone()[0] == pytest.approx(metrics["eval_loss_final"])


def test_cli_is_quiet_the_libraries_output_goes_to_the_log(cli_run):
    """On the terminal: the settings, one bar and the summary; the Trainer's metric dicts, the loading bars and
    the libraries' warnings in OUTPUT.log beside the output folder (not inside it: its listing is above)."""
    result, output, _ = cli_run
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    bars = [line for line in lines if line.startswith("sft:")]
    assert bars and bars[-1].startswith("sft: 100%") and "20/20" in bars[-1]
    printed = [line for line in lines if not line.startswith("sft:")]
    assert printed[0].startswith("SFT on ") and len(printed) <= 8, printed
    record = json.loads((output / "training.json").read_text())["metrics"]
    assert printed[-4].startswith(f"trained 20 steps in ") and f"best {record['eval_loss_best']:.4g} at step " \
        f"{record['best_step']}" in printed[-3]
    log = output.parent / "adapter.log"
    assert printed[-2:] == [f"  adapter: {output}", f"  the libraries' output: {log}"]
    assert "{'loss':" not in result.stderr and "'eval_loss':" in log.read_text()


def test_training_onto_a_trained_adapter_is_refused_unless_overwrite(cli_run, tmp_path):
    """--output naming an earlier run's adapter: refused (exit 2, one line naming both fixes, the adapter
    untouched); with --overwrite the new run replaces it."""
    import shutil

    _, trained, _ = cli_run
    output = shutil.copytree(trained, tmp_path / "adapter")
    before = (output / "adapter_model.safetensors").read_bytes()
    command = [sys.executable, "-m", "evalhub", "train", "sft", "--config", str(REPO / "trainers/configs/toy_sft.yaml"),
               "--output", str(output), "--max-steps", "2", "--eval-steps", "1", "--db", str(tmp_path / "store.duckdb")]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                             env={**os.environ, **ONE_THREAD})
    assert refused.returncode == 2
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {output} already holds a trained model") and "--output" in error
    assert "--overwrite" in error and "Traceback" not in refused.stderr
    assert (output / "adapter_model.safetensors").read_bytes() == before
    replaced = subprocess.run([*command, "--overwrite"], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                              env={**os.environ, **ONE_THREAD})
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert json.loads((output / "training.json").read_text())["metrics"]["steps"] == 2
    assert (output / "adapter_model.safetensors").read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter")]  # no staging folder left behind


def test_compare_reads_the_trained_adapter(cli_run, toy_world):
    from evalhub.models import describe_models

    _, output, _ = cli_run
    _, tuned = describe_models(str(toy_world / "base"), str(output))
    assert tuned.kind == "adapter" and tuned.adapter_hash == _sha256(output / "adapter_model.safetensors")


def test_tuned_model_has_lower_domain_loss_and_beats_base_on_golden(toy_adapter, toy_world, toy_manifest):
    from peft import PeftModel
    from sacrebleu.metrics import CHRF
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(toy_world / "base")
    base = AutoModelForCausalLM.from_pretrained(toy_world / "base").eval()
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(toy_world / "base"), toy_adapter).eval()
    # Domain data the SFT run never saw: the preferred answers of the DPO pairs.
    domain = [(row["prompt"], row["chosen"]) for row in read_jsonl(toy_world / toy_manifest["dpo"])[:24]]
    assert mean_completion_nll(tuned, tokenizer, domain) < mean_completion_nll(base, tokenizer, domain) - 2
    golden = read_jsonl(toy_world / toy_manifest["golden"])[:12]
    prompts = [f"{g['instruction']}\n\n{g['input']}" for g in golden]
    chrf = CHRF()
    scores = {name: [chrf.sentence_score(answer, [g["output"]]).score
                     for answer, g in zip(greedy_answers(model, tokenizer, prompts), golden)]
              for name, model in (("base", base), ("tuned", tuned))}
    wins = sum(t > b for t, b in zip(scores["tuned"], scores["base"]))
    assert wins >= 10 and sum(scores["tuned"]) > sum(scores["base"])


def test_overfitting_watch_stops_the_run_and_keeps_the_best_weights(toy_world, toy_manifest, tmp_path):
    """Forced overfitting: four training rows, a high learning rate, full fine-tuning (the fastest to memorise)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = read_jsonl(toy_world / toy_manifest["sft"])
    train = write_jsonl(tmp_path / "train.jsonl", rows[:4])
    validation = write_jsonl(tmp_path / "validation.jsonl", rows[500:508])
    output = train_sft(toy_settings(
        SFTSettings, base=toy_world / "base", data=train, validation=validation, output=tmp_path / "model",
        max_steps=60, full_finetune=True, learning_rate=3e-3, batch_size=8, eval_steps=2, logging_steps=1, patience=3,
        golden=[]))
    metrics = json.loads((output / "training.json").read_text())["metrics"]
    assert metrics["stopped_early"] and "while training loss fell" in metrics["stop_reason"]
    assert metrics["best_step"] < metrics["steps"] < 60
    assert metrics["eval_loss_best"] < metrics["eval_loss_final"]
    # The weights written are the best step's: their validation loss, measured here, is the best one.
    assert (output / "model.safetensors").exists() and not any(p.suffix in PICKLES for p in output.iterdir())
    model = AutoModelForCausalLM.from_pretrained(output).eval()
    pairs = [(f"{r['instruction']}\n\n{r['input']}", r["output"]) for r in read_jsonl(validation)]
    measured = mean_completion_nll(model, AutoTokenizer.from_pretrained(output), pairs)
    assert measured == pytest.approx(metrics["eval_loss_best"], abs=1e-3)


def test_one_seed_gives_identical_adapter_bytes_and_neftune_changes_them(toy_world, toy_manifest, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", read_jsonl(toy_world / toy_manifest["sft"])[:16])

    def run(name: str, **extra) -> bytes:
        out = train_sft(toy_settings(SFTSettings, base=toy_world / "base", data=data, output=tmp_path / name,
                                     max_steps=3, batch_size=4, validation_fraction=0, lora_dropout=0.1, golden=[],
                                     **extra))
        return (out / "adapter_model.safetensors").read_bytes()

    first = run("a")
    assert run("b") == first
    assert run("neftune", neftune_alpha=5.0) != first
    assert run("seed1", seed=1) != first


def test_qlora_trains_an_adapter_on_a_4bit_base(toy_world, toy_manifest, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = write_jsonl(tmp_path / "train.jsonl", read_jsonl(toy_world / toy_manifest["sft"])[:200])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = train_sft(toy_settings(SFTSettings, base=toy_world / "base", data=data, output=tmp_path / "qlora",
                                        qlora=True, max_steps=10, eval_steps=5, validation_fraction=0.1, golden=[]))
    # Training after a validation pass must not backpropagate through bitsandbytes' inference-only CPU kernel.
    assert not [w for w in caught if "autograd kernel was not registered" in str(w.message)]
    metrics = json.loads((output / "training.json").read_text())["metrics"]
    assert metrics["base_4bit_layers"] == 14  # every linear layer of the two blocks was NF4
    assert metrics["eval_loss_best"] < metrics["eval_loss_start"] - 1
    # The adapter loads onto the full-precision base, where compare and merge use it.
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(toy_world / "base"), output)


def test_without_hyperparameters_the_defaults_are_for_real_models(toy_world, toy_manifest, tmp_path):
    """`evalhub train sft` given only base, data and output: the real-model defaults, printed before training
    and read back from training.json (here, on a CPU, without bf16 or gradient checkpointing)."""
    data = write_jsonl(tmp_path / "train.jsonl", read_jsonl(toy_world / toy_manifest["sft"])[:20])
    output = tmp_path / "adapter"
    result = subprocess.run([sys.executable, "-m", "evalhub", "train", "sft", "--base", str(toy_world / "base"),
                             "--data", str(data), "--output", str(output), "--db", str(tmp_path / "store.duckdb")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600, env={**os.environ, **ONE_THREAD})
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((output / "training.json").read_text())
    config, run = record["config"], record["effective"]
    assert (config["learning_rate"], config["epochs"], config["max_steps"]) == (2e-4, 1.0, None)
    assert (config["batch_size"], config["grad_accum"], config["max_length"]) == (4, 4, 1024)
    assert (config["lora_r"], config["lora_alpha"], config["lora_dropout"]) == (16, None, 0.05)
    assert (config["bf16"], config["gradient_checkpointing"]) == (None, None)  # decided per machine
    assert run == {"device": "cpu", "bf16": False, "gradient_checkpointing": False, "length": "1 epoch(s)",
                   "effective_batch": 16, "base_dtype": "float32"}
    # One epoch over the 18 training rows (2 held out) in batches of 4 x 4 accumulated: 2 optimizer steps.
    assert record["metrics"]["steps"] == 2
    printed = result.stderr
    assert "length 1 epoch(s), learning rate 0.0002" in printed and "batch 4 x 4 accumulated = 16" in printed
    assert "max length 1024" in printed and "bf16 off, gradient checkpointing off" in printed


def test_bf16_on_a_machine_without_it_is_refused(toy_world, tmp_path):
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        pytest.skip("this machine supports bf16")
    with pytest.raises(UserError, match="bf16 needs a GPU that supports bfloat16"):
        train_sft(SFTSettings(base=toy_world / "base", data=tmp_path / "x.jsonl", output=tmp_path / "o", bf16=True))


def test_missing_base_unknown_module_and_foreign_output_are_user_errors(toy_world, toy_manifest, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", read_jsonl(toy_world / toy_manifest["sft"])[:8])
    with pytest.raises(UserError, match="cannot load the base model .*pass --base a model folder"):
        train_sft(SFTSettings(base=tmp_path / "no-model", data=data, output=tmp_path / "out"))
    with pytest.raises(UserError, match=r"\['qkv_proj'\] do not exist .*'q_proj'.*'all-linear'"):
        train_sft(SFTSettings(base=toy_world / "base", data=data, output=tmp_path / "out", target_modules=["qkv_proj"]))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not a training output"):
        train_sft(SFTSettings(base=toy_world / "base", data=data, output=foreign, max_steps=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "train.jsonl"]  # nothing half-written


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n')
    result = subprocess.run([sys.executable, "-m", "evalhub", "train", "sft", "--base", "toy:base", "--data", str(bad),
                             "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2: unrecognised example")
    assert not (tmp_path / "out").exists()
