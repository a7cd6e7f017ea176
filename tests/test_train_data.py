"""Training inputs without training: data formats and their file:line errors, YAML configs with flag
overrides, the overfitting watch's rule, and the store's training tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState

from evalhub.errors import UserError
from tests.train_helpers import write_jsonl
from trainers._curves import OverfittingWatch
from trainers.config import load_settings
from trainers.data import load_preference_examples, load_sft_examples, load_training_examples
from trainers.dpo import DPOSettings
from trainers.sft import SFTSettings

REPO = Path(__file__).resolve().parents[1]


def test_three_supervised_formats_give_the_same_example(tmp_path):
    instruction = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Translate.", "input": "sun", "output": "selzo"}])
    completion = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "Translate.\n\nsun", "completion": "selzo"}])
    chat = write_jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "Translate.\n\nsun"},
                                                            {"role": "assistant", "content": "selzo"}]}])
    examples = [load_sft_examples(path)[0] for path in (instruction, completion, chat)]
    assert examples[0] == examples[1] == examples[2]
    assert examples[0].prompt == ({"role": "user", "content": "Translate.\n\nsun"},)  # as GoldenItem.prompt
    assert examples[0].completion == "selzo" and examples[0].line == 1


def test_multi_turn_chat_trains_on_the_last_answer(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Sun?"},
        {"role": "assistant", "content": "selzo"}]}])
    (example,) = load_sft_examples(path)
    assert [m["role"] for m in example.prompt] == ["system", "user", "assistant", "user"]
    assert example.completion == "selzo"


@pytest.mark.parametrize("lines, line, message", [
    (['{"instruction": "a", "output": "b"}', '{"instruction": "a", "output": "b"'], 2, "bad JSON"),
    (['{"instruction": "a", "output": ""}'], 1, "non-empty string"),
    (['{"instruction": "a", "output": "b", "answer": "c"}'], 1, "unknown field"),
    (['{"instruction": "a", "output": "b"}', '', '{"prompt": "a", "completion": "b"}'], 3, "one format per file"),
    (['{"messages": [{"role": "user", "content": "a"}]}'], 1, "end with an assistant"),
    (['{"messages": [{"role": "robot", "content": "a"}]}'], 1, "needs a role"),
    (['{"text": "free text"}'], 1, "unrecognised example"),
    (['{"prompt": "a", "chosen": "b", "rejected": "c"}'], 1, "evalhub train dpo"),
])
def test_bad_training_rows_name_file_and_line(tmp_path, lines, line, message):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=message) as error:
        load_sft_examples(path)
    assert f"{path}:{line}:" in str(error.value)
    assert "\n" not in str(error.value)


def test_preference_pairs_load_and_supervised_rows_are_refused(tmp_path):
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Translate.\n\nsun", "chosen": "selzo", "rejected": "ka"},
                                               {"id": 7, "prompt": "Translate.\n\nsun", "chosen": "selzo",
                                                "rejected": [{"role": "assistant", "content": "ri"}]}])
    examples = load_preference_examples(pairs)
    assert [(e.line, e.chosen, e.rejected) for e in examples] == [(1, "selzo", "ka"), (2, "selzo", "ri")]
    assert load_training_examples(pairs) == examples
    sft = write_jsonl(tmp_path / "s.jsonl", [{"instruction": "a", "output": "b"}])
    with pytest.raises(UserError, match=rf"{sft}:1: expected a preference pair"):
        load_preference_examples(sft)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(UserError, match="empty"):
        load_preference_examples(empty)
    with pytest.raises(UserError, match="no such training file"):
        load_sft_examples(tmp_path / "missing.jsonl")


def test_yaml_config_with_flag_overrides(toy_world, toy_manifest, tmp_path):
    settings = load_settings(SFTSettings, REPO / "trainers" / "configs" / "toy_sft.yaml",
                             {"output": str(tmp_path / "out"), "max_steps": 7, "lora_r": None, "qlora": True})
    assert settings.base == toy_world / toy_manifest["base"] and settings.data == toy_world / toy_manifest["sft"]
    assert settings.golden == [toy_world / toy_manifest["golden"]]
    assert settings.max_steps == 7 and settings.qlora is True  # flags win
    assert settings.lora_r == 16 and settings.learning_rate == 3e-3  # from the file; None flags are ignored
    assert settings.output == tmp_path / "out"
    dpo = load_settings(DPOSettings, REPO / "trainers" / "configs" / "toy_dpo.yaml", {"beta": 0.3})
    assert dpo.beta == 0.3 and dpo.data == toy_world / toy_manifest["dpo"]
    # Every shipped config names only real settings (the QLoRA one leaves base/data/output to flags).
    qlora = load_settings(SFTSettings, REPO / "trainers" / "configs" / "qlora_sft.yaml",
                          {"base": "m", "data": "d.jsonl", "output": "o"})
    assert qlora.qlora and qlora.neftune_alpha == 5.0 and qlora.lora_alpha == 32


def test_config_errors_name_the_fix(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("base: b\ndata: d\noutput: o\nmax_step: 5\n")
    with pytest.raises(UserError, match=r"unknown setting\(s\) \['max_step'\]; allowed: .*'max_steps'"):
        load_settings(SFTSettings, config)
    config.write_text("base: b\ndata: d\noutput: o\nmax_steps: many\n")
    with pytest.raises(UserError, match="'max_steps' must be int"):
        load_settings(SFTSettings, config)
    config.write_text("base: b\ndata: d\noutput: o\nlearning_rate: 3e-3\n")  # YAML reads this as text
    assert load_settings(SFTSettings, config).learning_rate == 3e-3
    config.write_text("base: [b\n")
    with pytest.raises(UserError, match=rf"{config}:\d+: bad YAML"):
        load_settings(SFTSettings, config)
    with pytest.raises(UserError, match=r"missing setting\(s\) \['base', 'output'\].*--base, --output"):
        load_settings(SFTSettings, None, {"data": "d.jsonl"})
    with pytest.raises(UserError, match="toy:KEY with KEY among"):
        load_settings(SFTSettings, None, {"base": "toy:nothing", "data": "d", "output": "o"})


def _feed(watch: OverfittingWatch, train: list[float], evals: list[float]) -> int | None:
    """Drive the watch as the Trainer would: a training log then an evaluation every step."""
    control = TrainerControl()
    state = TrainerState()
    for step, (train_loss, eval_loss) in enumerate(zip(train, evals), start=1):
        state.global_step = step
        watch.on_log(None, state, control, logs={"loss": train_loss})
        watch.on_evaluate(None, state, control, metrics={"eval_loss": eval_loss})
        if control.should_training_stop:
            return step
    return None


def test_overfitting_watch_needs_rising_validation_and_falling_training_loss():
    falling = [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.2]
    assert _feed(OverfittingWatch(patience=3), falling, [5.0, 4.0, 3.5, 3.6, 3.7, 3.8, 3.9]) == 6
    assert _feed(OverfittingWatch(patience=3), falling, [5.0, 4.0, 3.5, 3.6, 3.4, 3.8, 3.9]) is None  # not 3 in a row
    assert _feed(OverfittingWatch(patience=3), [5.0, 4.0, 3.0, 3.1, 3.2, 3.3, 3.4],
                 [5.0, 4.0, 3.5, 3.6, 3.7, 3.8, 3.9]) is None  # training loss rose too: divergence, not overfitting
    assert _feed(OverfittingWatch(patience=0), falling, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) is None  # watch off
    watch = OverfittingWatch(patience=2)
    assert _feed(watch, falling, [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9]) == 4
    assert "rose 2 evaluations in a row" in watch.reason and watch.stopped_at == 4


def test_training_run_is_stored_and_a_rerun_replaces_it(tmp_path):
    from evalhub.store import read_connection, save_training_run

    db = tmp_path / "s.duckdb"
    curves = [{"step": 0, "split": "eval", "loss": 3.0}, {"step": 5, "split": "train", "loss": 2.5},
              {"step": 5, "split": "eval", "loss": 2.0}]
    save_training_run("abc", "/adapters/a", "sft", {"seed": 0}, curves, db)
    save_training_run("abc", "/adapters/a2", "sft", {"seed": 0}, curves[1:], db)  # same seed, same bytes, same hash
    with read_connection(db) as con:
        assert con.execute("SELECT path, method, json_extract(config, '$.seed') FROM training_runs").fetchall() == [
            ("/adapters/a2", "sft", "0")]
        assert con.execute("SELECT step, split, loss FROM training_curves ORDER BY step, split").fetchall() == [
            (5, "eval", 2.0), (5, "train", 2.5)]
