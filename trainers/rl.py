"""RL on a reward through TRL's GRPOTrainer or RLOOTrainer: the policy samples several answers per prompt,
a reward scores them, and each answer is pushed up or down by how it compares with its group (GRPO: the
group's mean and spread; RLOO: the mean of the others). A KL penalty (`beta`) holds the policy near the
reference model: the starting adapter when one is given (`adapter`, a frozen copy of it), else the base.

The reward is `rm:PATH` (a reward model from `evalhub train rm`) or `python:module:function` (a verifiable
reward, e.g. `python:evalhub.rewards:exact_match` against a golden item's ideal answer); evalhub/rewards.py.
Prompts come as JSONL with `prompt` (text or chat messages), or as golden-set items (`instruction` and
`input`, or `messages`); their other fields reach the reward function. Generation goes through vLLM (colocated,
in this process) where there is a GPU and vLLM, and through transformers otherwise.

Written like every adapter: adapter_model.safetensors + adapter_config.json on the base (so compare and arena
read it), training.json, and curves.csv with the mean reward and the KL to the reference per logged step.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.quiet import progress
from trainers._common import TrainSettings

RL_CURVE_COLUMNS = ("step", "split", "loss", "perplexity", "reward_margin", "reward", "reward_std", "kl")
PROMPT_EXAMPLE = '{"prompt": "...", "output": "the reference answer"}'


@dataclass
class RLSettings(TrainSettings):
    """RL settings: the shared ones (base, data, output, max_steps, lora_r, ...) and these."""

    reward: str | None = None  # rm:PATH or python:module:function (required)
    adapter: Path | None = None  # a LoRA adapter of `base` to start from (it trains on; its frozen copy is the reference)
    num_generations: int = 8  # answers sampled per prompt: the group each answer is compared with
    max_completion_length: int = 256  # tokens per sampled answer
    temperature: float = 1.0  # sampling temperature of the answers (the group needs different answers)
    beta: float = 0.04  # KL penalty towards the reference; 0.04 as in DeepSeekMath's GRPO. 0 turns it (and its curve) off
    # LoRA RL moves a tuned model with small steps; full-model recipes use 1e-6, LoRA ones about ten times more.
    learning_rate: float = 1e-5
    validation_fraction: float = 0.0  # RL is judged by compare on a golden set, not by a held-out loss
    use_vllm: bool | None = None  # None: vLLM where there is a GPU and vLLM is installed, else transformers


@dataclass
class GRPOSettings(RLSettings):
    """GRPO: advantages normalised within each prompt's group."""


@dataclass
class RLOOSettings(RLSettings):
    """RLOO: each answer's baseline is the mean reward of the other answers to its prompt."""

    num_generations: int = 4
    beta: float = 0.05  # TRL's RLOO default


def load_prompts(path: Path) -> list[dict]:
    """Prompt rows for TRL: `prompt` (text, or chat messages) and the row's other scalar fields, or UserError
    naming file:line. Golden-set items become their prompt (instruction + blank line + input, or messages)."""
    from evalhub.jsonl import read_json_objects

    rows: list[dict] = []
    for where, _number, row in read_json_objects(path, "prompt file", PROMPT_EXAMPLE):
        if "prompt" in row:
            prompt = row["prompt"]
            ok = (isinstance(prompt, str) and prompt.strip()) or (
                isinstance(prompt, list) and prompt and all(isinstance(m, dict) and m.get("role") in
                                                            ("system", "user", "assistant") for m in prompt))
            if not ok:
                raise UserError(f"{where}: 'prompt' must be non-empty text or a list of {{\"role\", \"content\"}} messages")
        elif "messages" in row:
            prompt = row["messages"]
            if not isinstance(prompt, list) or not prompt or prompt[-1].get("role") != "user":
                raise UserError(f"{where}: 'messages' must be a conversation ending with the user's turn")
        elif "instruction" in row:
            instruction, extra = row["instruction"], row.get("input") or ""
            if not isinstance(instruction, str) or not instruction.strip() or not isinstance(extra, str):
                raise UserError(f"{where}: 'instruction' (and 'input') must be text")
            prompt = f"{instruction}\n\n{extra}" if extra else instruction
        else:
            raise UserError(f"{where}: no prompt; give each line 'prompt', or a golden item's 'instruction' or "
                            f"'messages', e.g. {PROMPT_EXAMPLE}")
        fields = {k: v for k, v in row.items() if k not in ("prompt", "messages", "instruction", "input")
                  and isinstance(v, (str, int, float, bool))}
        rows.append({"prompt": prompt, **fields})
    if not rows:
        raise UserError(f"{path}: the prompt file is empty; add one JSON object per line")
    keys = set(rows[0])
    for row in rows:  # a column missing in some rows would be dropped or mistyped by datasets
        for key in keys ^ set(row):
            row.setdefault(key, None)
    return rows


def _chat_rows(rows: list[dict], chat_template: bool) -> list[dict]:
    """Prompts as TRL takes them: chat messages (TRL applies the chat template), or plain text."""
    if chat_template:
        return [{**r, "prompt": r["prompt"] if isinstance(r["prompt"], list)
                 else [{"role": "user", "content": r["prompt"]}]} for r in rows]
    return [{**r, "prompt": (r["prompt"] if isinstance(r["prompt"], str)
                             else "\n\n".join(m["content"] for m in r["prompt"])) + "\n"} for r in rows]


def check_rl_settings(settings: RLSettings) -> None:
    from trainers import _common

    _common.check_settings(settings, at_validation=False)  # golden evaluations run every eval_every steps
    _common.refuse_resume(settings)
    if settings.num_generations < 2:
        raise UserError(f"num_generations must be at least 2 (each answer is compared with its group), "
                        f"got {settings.num_generations}")
    if settings.max_completion_length < 1:
        raise UserError(f"max_completion_length must be at least 1, got {settings.max_completion_length}")
    if not settings.temperature > 0:
        raise UserError(f"temperature must be positive, got {settings.temperature}")
    if settings.beta < 0:
        raise UserError(f"beta must be 0 or more, got {settings.beta}")
    if settings.validation is not None:
        raise UserError("RL takes no validation file; measure the result with `evalhub compare` on a golden set")
    per_generation = settings.batch_size * settings.grad_accum
    if per_generation % settings.num_generations:
        raise UserError(f"batch_size x grad_accum ({settings.batch_size} x {settings.grad_accum} = {per_generation}) "
                        f"must be a multiple of num_generations ({settings.num_generations}): each step takes whole "
                        "groups of answers")
    if settings.use_vllm and not _vllm_available():
        raise UserError("--use-vllm needs a GPU and vLLM; drop it (the default uses vLLM where it can)")
    if settings.adapter is not None:
        from evalhub.models import inspect_model

        if inspect_model(settings.adapter).kind != "adapter":
            raise UserError(f"--adapter {settings.adapter} is not a LoRA adapter folder (adapter_config.json); pass "
                            "the adapter to start from, or leave it out to train a new one")


def _vllm_available() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


def train_grpo(settings: GRPOSettings, db: Path | None = None, callbacks: tuple = ()) -> Path:
    """GRPO on `settings.data`'s prompts against `settings.reward`; writes the adapter into settings.output."""
    return _train(settings, "grpo", db, callbacks)


def train_rloo(settings: RLOOSettings, db: Path | None = None, callbacks: tuple = ()) -> Path:
    """RLOO on `settings.data`'s prompts against `settings.reward`; writes the adapter into settings.output."""
    return _train(settings, "rloo", db, callbacks)


def _train(settings: RLSettings, method: str, db: Path | None, callbacks: tuple) -> Path:
    from trainers import _common
    from evalhub.rewards import check_reward_spec

    check_rl_settings(settings)
    check_reward_spec(settings.reward)
    rows = load_prompts(settings.data)
    _common.check_output(settings.output, settings.overwrite)
    contamination = _common.check_contamination(settings)
    # Heavy imports only once the inputs are known to be good: bad input fails in a second.
    from datasets import Dataset
    from transformers import set_seed

    from evalhub.rewards import make_reward
    from trainers._curves import OverfittingWatch

    if method == "grpo":
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer
    else:
        from trl import RLOOConfig as Config
        from trl import RLOOTrainer as Trainer

    # The judge, the tasks' datasets and a baseline's answers before the base loads: a bad one fails fast.
    golden = _common.golden_callback(settings, False, None, db, at_steps=True)
    tasks = _common.task_callback(settings, False, at_steps=True)
    tokenizer = _common.load_tokenizer(settings)
    reward = make_reward(settings.reward)
    set_seed(settings.seed)
    model = _common.load_base_model(settings)
    peft_config = None
    if settings.adapter is not None:
        from peft import PeftModel

        try:  # trains on as the adapter "default"; TRL keeps a frozen copy as "ref", the KL's reference
            model = PeftModel.from_pretrained(model, str(settings.adapter), is_trainable=True)
        except (ValueError, KeyError, RuntimeError) as error:
            raise UserError(f"--adapter {settings.adapter} does not fit {settings.base} "
                            f"({str(error).splitlines()[0]}); pass the base it was trained on") from None
    else:
        peft_config = _common.lora_config(settings, model)
    use_vllm = settings.use_vllm if settings.use_vllm is not None else _vllm_available()
    with _common.staged_output(settings.output, settings.overwrite) as staging:
        arguments = _common.trainer_arguments(settings, staging / ".checkpoints", False)
        arguments.pop("max_length", None)  # RL bounds the answers instead (max_completion_length)
        args = Config(**arguments, num_generations=settings.num_generations,
                      max_completion_length=settings.max_completion_length, temperature=settings.temperature,
                      beta=settings.beta, use_vllm=use_vllm, vllm_mode="colocate")
        watch = OverfittingWatch(patience=0)  # no validation loss in RL: it only records the training points
        set_seed(settings.seed)
        trainer = Trainer(model=model, reward_funcs=reward, args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list(_chat_rows(rows, settings.chat_template)),
                          peft_config=peft_config,
                          callbacks=[watch, *_common.evaluation_callbacks(settings, staging, golden, tasks), *callbacks])
        trainer.train()
        _finish(trainer, watch, staging, method, settings, rows, contamination, db, use_vllm, golden, tasks)
    return Path(settings.output)


def _evaluation_columns(golden, tasks) -> tuple[dict[int, dict], list[str]]:
    """The evaluations that ran, by step ({column: value}), and their columns in curves.csv's order."""
    from trainers._curves import GOLDEN_COLUMNS

    by_step: dict[int, dict] = {}
    for callback in (golden, tasks):
        for record in (callback.records if callback is not None else []):
            if "eval_error" in record or "tasks_error" in record:
                continue
            wanted = {k: v for k, v in record.items() if k in GOLDEN_COLUMNS or k.startswith("acc_")}
            by_step.setdefault(record["step"], {}).update(wanted)
    measured = {k for values in by_step.values() for k in values}
    columns = [c for c in GOLDEN_COLUMNS if c in measured] + sorted(k for k in measured if k.startswith("acc_"))
    return by_step, columns


def _finish(trainer, watch, staging: Path, method: str, settings: RLSettings, rows, contamination, db,
            use_vllm: bool, golden=None, tasks=None) -> dict:
    from trainers import _common
    from trainers._curves import curve_points
    from trainers.data import file_sha256

    model = trainer.accelerator.unwrap_model(trainer.model)
    # Only the trained adapter: TRL's frozen reference copy ("ref") stays behind.
    model.save_pretrained(staging, safe_serialization=True, selected_adapters=["default"])
    history = trainer.state.log_history
    points = curve_points(history, loss_is_nll=False)
    logged = {int(e.get("step", 0)): e for e in history if "loss" in e}
    metrics = _common.final_metrics(trainer, watch, points)
    rewards = [(s, e["reward"]) for s, e in sorted(logged.items()) if "reward" in e]
    kls = [(s, e["kl"]) for s, e in sorted(logged.items()) if "kl" in e]
    metrics.update(reward_first=rewards[0][1] if rewards else None, reward_final=rewards[-1][1] if rewards else None,
                   kl_final=kls[-1][1] if kls else None, generation="vllm" if use_vllm else "transformers",
                   reward=settings.reward, start_adapter=str(settings.adapter) if settings.adapter else None)
    if rewards:
        progress(f"{method}: mean reward {rewards[0][1]:.3f} (step {rewards[0][0]}) -> {rewards[-1][1]:.3f} "
                 f"(step {rewards[-1][0]})" + (f", KL to the reference {kls[-1][1]:.4f}" if kls else ""))
    data = {"train": {"path": str(settings.data), "sha256": file_sha256(settings.data), "rows": len(rows)},
            "validation": {"path": None, "sha256": None, "rows": 0, "lines": None}}
    extra = {}
    if golden is not None:
        extra["golden_eval"] = golden.summary()
    if tasks is not None:
        extra["task_eval"] = _common.task_record(tasks, [], extra.get("golden_eval"))
    record = _common.write_record(staging, method, settings, data, metrics, contamination, points, db, extra)
    # The golden evaluation's and the tasks' numbers on the training rows of the steps where they ran.
    evaluated, columns = _evaluation_columns(golden, tasks)
    with open(staging / "curves.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RL_CURVE_COLUMNS + tuple(columns))
        for p in points:
            entry = logged.get(p.step, {}) if p.split == "train" else {}
            measured = evaluated.get(p.step, {}) if p.split == "train" else {}
            writer.writerow([p.step, p.split, repr(p.loss), "", "",
                             *("" if entry.get(k) is None else repr(float(entry[k])) for k in ("reward", "reward_std", "kl")),
                             *("" if measured.get(c) is None else repr(measured[c]) for c in columns)])
    return record
