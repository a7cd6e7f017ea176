"""`evalhub train rm|grpo|rloo`: a reward model, and RL against a reward, beside `train sft|dpo`.

The same YAML config and flag rules as sft and dpo (evalhub/cli/train.py); the folder is printed on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli.train import (BASE, BATCH_SIZE, CONFIG, EVAL_BASELINE, EVAL_GOLDEN, EVAL_ITEMS, EVAL_JUDGE,
                               EVAL_LIMIT, EVAL_MAX_COST, EVAL_TASKS, EVAL_TASKS_PATH, GOLDEN, GRAD_ACCUM,
                               LEARNING_RATE, LORA_ALPHA, LORA_R, MAX_LENGTH, MAX_STEPS, OUTPUT, OVERWRITE, QLORA,
                               SEED, STRICT, TARGET_MODULES, _limit, _overrides, _run, _task_list, train_app)

RL_EVAL_EVERY = typer.Option(None, "--eval-every", help="Training steps between golden (and task) evaluations; RL "
                                                        "has no validation steps (default: --eval-steps).")

RM_CONFIG = typer.Option(None, "--config", help="YAML file of settings, or a shipped config by name (toy_rm); flags "
                                                "override it.")
RL_CONFIG = typer.Option(None, "--config", help="YAML file of settings, or a shipped config by name (toy_grpo); flags "
                                                "override it.")
PROMPTS = typer.Option(None, help="Prompt JSONL: `prompt` (text or chat messages) or golden-set items; other fields "
                                  "reach the reward (e.g. `output`, the reference answer).")
REWARD = typer.Option(None, help="rm:PATH (a reward model from `evalhub train rm`) or python:module:function (e.g. "
                                 "python:evalhub.rewards:exact_match).")
ADAPTER = typer.Option(None, help="A LoRA adapter of --base to start from (e.g. an SFT adapter); it trains on, and its "
                                  "frozen copy is the KL's reference. Default: a new adapter on the base.")
NUM_GENERATIONS = typer.Option(None, help="Answers sampled per prompt (default 8 for GRPO, 4 for RLOO).")
MAX_COMPLETION_LENGTH = typer.Option(None, help="Tokens per sampled answer (default 256).")
TEMPERATURE = typer.Option(None, help="Sampling temperature of the answers (default 1.0).")
BETA = typer.Option(None, help="KL penalty towards the reference (default 0.04 GRPO, 0.05 RLOO; 0: none).")
USE_VLLM = typer.Option(None, "--use-vllm/--no-vllm", help="Generate with vLLM (default: where there is a GPU and vLLM).")


@train_app.command("rm")
def rm(
    config: Optional[Path] = RM_CONFIG,
    base: Optional[str] = BASE,
    data: Optional[str] = typer.Option(None, help="Preference JSONL: prompt/chosen/rejected (the DPO format)."),
    output: Optional[Path] = OUTPUT,
    max_steps: Optional[int] = MAX_STEPS,
    max_length: Optional[int] = MAX_LENGTH,
    grad_accum: Optional[int] = GRAD_ACCUM,
    target_modules: Optional[str] = TARGET_MODULES,
    lora_r: Optional[int] = LORA_R,
    lora_alpha: Optional[int] = LORA_ALPHA,
    qlora: Optional[bool] = QLORA,
    learning_rate: Optional[float] = LEARNING_RATE,
    batch_size: Optional[int] = BATCH_SIZE,
    seed: Optional[int] = SEED,
    validation: Optional[str] = typer.Option(None, help="Held-out preference pairs (default: 10% of --data)."),
    eval_steps: Optional[int] = typer.Option(None, help="Held-out loss and preference accuracy every this many steps."),
    golden: List[str] = GOLDEN,
    strict: Optional[bool] = STRICT,
    overwrite: bool = OVERWRITE,
    db: Optional[str] = shared.DB,
    verbose: bool = shared.VERBOSE,
) -> None:
    """A reward model through TRL's RewardTrainer: a LoRA adapter and a score head on the base, trained so the
    chosen answer scores above the rejected one; held-out preference accuracy during and after training."""
    from trainers.reward import RMSettings, train_rm

    _run(train_rm, RMSettings, config, db, _overrides(
        base=base, data=data, output=output, max_steps=max_steps, max_length=max_length, grad_accum=grad_accum,
        target_modules=target_modules, lora_r=lora_r, lora_alpha=lora_alpha, qlora=qlora, learning_rate=learning_rate,
        batch_size=batch_size, seed=seed, validation=validation, eval_steps=eval_steps, golden=golden, strict=strict,
        overwrite=overwrite or None), verbose)


def _rl(method: str, config, db, verbose: bool, **flags) -> None:
    from trainers.rl import GRPOSettings, RLOOSettings, train_grpo, train_rloo

    train, settings_class = (train_grpo, GRPOSettings) if method == "grpo" else (train_rloo, RLOOSettings)
    flags["overwrite"] = flags.get("overwrite") or None
    _run(train, settings_class, config, db, _overrides(**flags), verbose)


def _rl_command(method: str, summary: str):
    def command(
        config: Optional[Path] = RL_CONFIG,
        base: Optional[str] = BASE,
        adapter: Optional[str] = ADAPTER,
        data: Optional[str] = PROMPTS,
        reward: Optional[str] = REWARD,
        output: Optional[Path] = OUTPUT,
        max_steps: Optional[int] = MAX_STEPS,
        num_generations: Optional[int] = NUM_GENERATIONS,
        max_completion_length: Optional[int] = MAX_COMPLETION_LENGTH,
        temperature: Optional[float] = TEMPERATURE,
        beta: Optional[float] = BETA,
        use_vllm: Optional[bool] = USE_VLLM,
        grad_accum: Optional[int] = GRAD_ACCUM,
        target_modules: Optional[str] = TARGET_MODULES,
        lora_r: Optional[int] = LORA_R,
        lora_alpha: Optional[int] = LORA_ALPHA,
        qlora: Optional[bool] = QLORA,
        learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate (default 1e-5)."),
        batch_size: Optional[int] = typer.Option(None, help="Answers per device per step, whole groups (default 4)."),
        seed: Optional[int] = SEED,
        golden: List[str] = GOLDEN,
        strict: Optional[bool] = STRICT,
        eval_golden: Optional[str] = EVAL_GOLDEN,
        eval_judge: Optional[str] = EVAL_JUDGE,
        eval_every: Optional[int] = RL_EVAL_EVERY,
        eval_items: Optional[int] = EVAL_ITEMS,
        eval_baseline: Optional[str] = EVAL_BASELINE,
        eval_tasks: Optional[str] = EVAL_TASKS,
        eval_limit: Optional[float] = EVAL_LIMIT,
        eval_tasks_path: Optional[str] = EVAL_TASKS_PATH,
        max_cost: Optional[float] = EVAL_MAX_COST,
        overwrite: bool = OVERWRITE,
        db: Optional[str] = shared.DB,
        verbose: bool = shared.VERBOSE,
    ) -> None:
        _rl(method, config, db, verbose, base=base, adapter=adapter, data=data, reward=reward, output=output,
            max_steps=max_steps, num_generations=num_generations, max_completion_length=max_completion_length,
            temperature=temperature, beta=beta, use_vllm=use_vllm, grad_accum=grad_accum,
            target_modules=target_modules, lora_r=lora_r, lora_alpha=lora_alpha, qlora=qlora,
            learning_rate=learning_rate, batch_size=batch_size, seed=seed, golden=golden, strict=strict,
            eval_golden=eval_golden, eval_judge=eval_judge, eval_every=eval_every, eval_items=eval_items,
            eval_baseline=eval_baseline, eval_tasks=_task_list(eval_tasks), eval_limit=_limit(eval_limit),
            eval_tasks_path=eval_tasks_path, eval_max_cost=max_cost, overwrite=overwrite)

    command.__doc__ = summary
    return command


train_app.command("grpo")(_rl_command("grpo", "GRPO through TRL's GRPOTrainer: several answers per prompt, each "
                                              "pushed by its reward against its group's; KL to the reference in "
                                              "the curves."))
train_app.command("rloo")(_rl_command("rloo", "RLOO through TRL's RLOOTrainer: several answers per prompt, each "
                                              "pushed by its reward against the mean of the others; KL to the "
                                              "reference in the curves."))
