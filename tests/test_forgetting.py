"""Forgetting benchmarks on the toy world: lm-eval as a library on base and tuned, compared item by item,
checked against lm-eval's own command line, stored, and a missing dataset failing in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalhub.errors import UserError
from evalhub.forgetting import ForgettingSettings, compare_benchmarks
from evalhub.stats.paired import mcnemar_test

TASK = "toy_general"
SETTINGS = ForgettingSettings(batch_size=8, num_fewshot=0, fewshot_seed=1234, dtype="float32", seed=0)


def _toy_items(toy_world: Path, toy_manifest: dict) -> list[dict]:
    path = toy_world / toy_manifest["tasks_path"] / f"{TASK}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def toy_tasks(toy_world: Path, toy_manifest: dict) -> Path:
    return toy_world / toy_manifest["tasks_path"]


@pytest.fixture(scope="module")
def hf_result(toy_world: Path, toy_tasks: Path, toy_adapter: Path):
    """Base and LoRA-tuned toy model on the toy task, hf backend: one load, adapter off then on."""
    return compare_benchmarks(base=toy_world / "base", tuned=toy_adapter, tasks=[TASK], tasks_path=toy_tasks,
                              backend="hf", settings=SETTINGS)


def _items_by_id(result) -> dict[str, dict]:
    return {item["doc_id"]: item for item in result.items}


def test_per_task_comparison_is_paired_over_the_tasks_items(hf_result, toy_world, toy_manifest):
    summary = hf_result.tasks[TASK]
    items = _items_by_id(hf_result)
    # Items are keyed by the task file's own ids, every one of them once.
    assert sorted(items) == sorted(row["id"] for row in _toy_items(toy_world, toy_manifest))
    assert summary["n"] == len(items)
    assert summary["metric"] == "acc"
    assert summary["base"] == pytest.approx(toy_manifest["base_general_accuracy"])
    base = [items[k]["base_correct"] for k in sorted(items)]
    tuned = [items[k]["tuned_correct"] for k in sorted(items)]
    assert summary["tuned"] == pytest.approx(sum(tuned) / len(tuned))
    assert summary["delta"] == pytest.approx(summary["tuned"] - summary["base"])
    assert summary["ci"][0] <= summary["delta"] <= summary["ci"][1]
    assert summary["p_value"] == pytest.approx(mcnemar_test(base, tuned).p_midp)
    assert summary["forgetting"] == (summary["delta"] < 0 and summary["p_value"] < SETTINGS.alpha)
    assert sorted(summary["newly_wrong"]) == [k for k in sorted(items) if items[k]["base_correct"] > items[k]["tuned_correct"]]
    assert summary["base_acc_norm"] is not None and summary["tuned_acc_norm"] is not None
    assert summary["task_version"] == "1.0"


def test_versions_settings_and_seeds_travel_with_the_result(hf_result):
    import lm_eval

    assert hf_result.lm_eval_version == lm_eval.__version__
    settings = hf_result.settings
    assert settings["backend"] == "hf" and settings["tuned_kind"] == "adapter"
    assert {settings[k] for k in ("num_fewshot", "fewshot_seed", "random_seed", "batch_size")} == {0, 1234, 8}
    row = hf_result.benchmark_rows()[0]
    assert row["lm_eval_version"] == lm_eval.__version__ and row["task_version"] == "1.0"
    assert row["settings"]["numpy_seed"] == 1234 and row["newly_wrong"] == hf_result.tasks[TASK]["newly_wrong"]


def _lm_eval_cli(tmp_path: Path, model_args: str, toy_tasks: Path, name: str) -> tuple[dict, dict[str, float]]:
    """lm-eval's own command line on the toy task, with evalhub's settings: its acc and per-item acc."""
    out = tmp_path / name
    command = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", model_args, "--tasks", TASK,
               "--include_path", str(toy_tasks), "--output_path", str(out), "--log_samples", "--batch_size", "8",
               "--num_fewshot", "0", "--device", "cpu", "--seed", "0,1234,1234,1234"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = [json.loads(line) for line in next(out.rglob(f"samples_{TASK}_*.jsonl")).read_text().splitlines()]
    return results["results"][TASK], {s["doc"]["id"]: float(s["acc"]) for s in samples}


def test_accuracies_equal_lm_eval_command_line(hf_result, toy_world, toy_tasks, toy_adapter, tmp_path):
    """The same model, task and settings through `python -m lm_eval`: the same accuracy, item for item."""
    reported, per_item = _lm_eval_cli(tmp_path, f"pretrained={toy_world / 'base'},peft={toy_adapter},dtype=float32",
                                      toy_tasks, "tuned")
    assert hf_result.tasks[TASK]["tuned"] == pytest.approx(reported["acc,none"], abs=1e-12)
    assert hf_result.tasks[TASK]["tuned_acc_norm"] == pytest.approx(reported["acc_norm,none"], abs=1e-12)
    assert per_item == {key: item["tuned_correct"] for key, item in _items_by_id(hf_result).items()}


def test_base_with_the_adapter_disabled_scores_as_the_plain_base(hf_result, toy_world, toy_tasks):
    """No adapter at all (the base scored alone) gives the scores evalhub got with the loaded adapter disabled."""
    alone = compare_benchmarks(base=toy_world / "base", tuned=None, tasks=[TASK], tasks_path=toy_tasks,
                               backend="hf", settings=SETTINGS)
    summary = alone.tasks[TASK]
    assert summary["tuned"] is None and summary["delta"] is None and summary["forgetting"] is False
    assert {i["doc_id"]: (i["base_correct"], i["base_acc_norm"]) for i in alone.items} == \
           {i["doc_id"]: (i["base_correct"], i["base_acc_norm"]) for i in hf_result.items}


def _evalhub(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The `evalhub` command line, in this process: exit code, stdout, stderr."""
    from evalhub.cli import main

    monkeypatch.setattr(sys, "argv", ["evalhub", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def test_bench_command_prints_writes_json_and_stores_the_run(toy_world, toy_tasks, toy_adapter, tmp_path,
                                                            monkeypatch, capsys):
    from evalhub.store import read_connection

    db, out = tmp_path / "bench.duckdb", tmp_path / "bench.json"
    code, stdout, stderr = _evalhub(monkeypatch, capsys, "bench", str(toy_world / "base"), "--adapter", str(toy_adapter),
                                    "--tasks", TASK, "--tasks-path", str(toy_tasks), "--backend", "hf",
                                    "--limit", "12", "--json", str(out), "--db", str(db))
    assert code == 0, stderr[-3000:]
    assert TASK in stdout
    summary = json.loads(out.read_text())[TASK]
    assert {"base", "tuned", "delta", "ci", "p_value", "forgetting"} <= set(summary)
    assert summary["n"] == 12
    with read_connection(db) as con:
        kind, config = con.execute("SELECT kind, config FROM runs").fetchone()
        stored = con.execute("SELECT base, tuned, delta, p_value, forgetting, lm_eval_version, task_version, settings "
                             "FROM benchmarks WHERE task = ?", [TASK]).fetchone()
        n_items = con.execute("SELECT count(*) FROM benchmark_items WHERE task = ?", [TASK]).fetchone()[0]
    assert kind == "bench" and json.loads(config)["limit"] == 12
    assert stored[:5] == (summary["base"], summary["tuned"], summary["delta"], summary["p_value"], summary["forgetting"])
    assert stored[5] and stored[6] == "1.0" and json.loads(stored[7])["fewshot_seed"] == 1234
    assert n_items == 12


def test_unreachable_dataset_fails_in_one_line_naming_the_fix(toy_world, toy_adapter, monkeypatch, capsys):
    """mmlu offline: exit 2, one line naming a local task or a dataset cache, before any model is loaded."""
    import datasets

    # conftest sets HF_DATASETS_OFFLINE before datasets is imported; a machine with mmlu cached would run it.
    if any(Path(datasets.config.HF_DATASETS_CACHE).glob("cais___mmlu*")):
        pytest.skip("mmlu is in this machine's datasets cache")
    code, _, stderr = _evalhub(monkeypatch, capsys, "bench", str(toy_world / "base"), "--adapter", str(toy_adapter),
                               "--tasks", "mmlu", "--backend", "hf", "--no-store")
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr
    assert "mmlu" in errors[0] and "--tasks-path" in errors[0] and "cache" in errors[0]
    # The model was never loaded: transformers' weight-loading bar never appeared.
    assert "Loading weights" not in stderr


def test_bad_inputs_are_user_errors_before_anything_loads(toy_world, toy_tasks, tmp_path):
    base = toy_world / "base"
    with pytest.raises(UserError, match="adapter folder"):
        compare_benchmarks(base, tmp_path / "missing", [TASK], toy_tasks)
    with pytest.raises(UserError, match="--tasks"):
        compare_benchmarks(base, None, [" "], toy_tasks)
    with pytest.raises(UserError, match="not a folder"):
        compare_benchmarks(base, None, [TASK], tmp_path / "nope")
    with pytest.raises(UserError, match="served model"):
        compare_benchmarks(base, None, [TASK], toy_tasks, backend="openai")


@pytest.mark.slow
def test_vllm_backend_one_engine_agrees_with_hf_item_by_item(hf_result, toy_world, toy_tasks, toy_adapter):
    """lm-eval's vllm model with the LoRA request cleared for the base and set for the tuned model scores every
    item as transformers + peft does."""
    pytest.importorskip("vllm")
    result = compare_benchmarks(base=toy_world / "base", tuned=toy_adapter, tasks=[TASK], tasks_path=toy_tasks,
                                backend="vllm", settings=SETTINGS)
    assert result.settings["backend"] == "vllm"
    vllm_items, hf_items = _items_by_id(result), _items_by_id(hf_result)
    for role in ("base", "tuned"):
        assert {k: i[f"{role}_correct"] for k, i in vllm_items.items()} == \
               {k: i[f"{role}_correct"] for k, i in hf_items.items()}
    assert result.tasks[TASK]["newly_wrong"] == hf_result.tasks[TASK]["newly_wrong"]
