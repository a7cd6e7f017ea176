"""`evalhub train sft|dpo`: train an adapter from a YAML config, with flags that override it.

The adapter's folder is printed on stdout. On stderr: the effective settings, one progress bar and a closing
summary; the libraries' output goes to OUTPUT.log beside the output folder unless --verbose.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app

train_app = typer.Typer(help="Train a LoRA / QLoRA adapter (SFT or DPO) that `evalhub compare` can read.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

CONFIG = typer.Option(None, "--config", help="YAML file of settings, or a shipped config by name (toy_sft, toy_dpo, "
                                            "qlora_sft; see trainers/configs/); flags override it.")
BASE = typer.Option(None, help="Base model folder (or a model id in the local cache); toy:base names the toy model.")
OUTPUT = typer.Option(None, help="Folder for the adapter, training.json and curves.csv.")
EPOCHS = typer.Option(None, help="Passes over the training data (default 1); --max-steps, when given, wins.")
MAX_STEPS = typer.Option(None, help="Optimizer steps (instead of --epochs).")
MAX_LENGTH = typer.Option(None, help="Tokens per example, prompt and answer (default 1024); longer ones are truncated.")
GRAD_ACCUM = typer.Option(None, help="Batches accumulated into one optimizer step (default 4; effective batch: "
                                     "batch size x this).")
BF16 = typer.Option(None, "--bf16/--no-bf16", help="bfloat16 mixed precision (default: on where the GPU supports it).")
GRADIENT_CHECKPOINTING = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                                      help="Recompute activations to save memory (default: on GPUs, off on CPUs).")
TARGET_MODULES = typer.Option(None, "--target-modules", help="LoRA target modules, comma-separated (e.g. "
                                                             "q_proj,k_proj,v_proj,o_proj; Phi-3: qkv_proj,o_proj), "
                                                             "or all-linear (default).")
LORA_R = typer.Option(None, help="LoRA rank (alpha defaults to 2r).")
LORA_ALPHA = typer.Option(None, help="LoRA alpha.")
QLORA = typer.Option(None, "--qlora/--no-qlora", help="Load the base in 4-bit NF4 (double quantization) and train LoRA on it.")
LEARNING_RATE = typer.Option(None, help="Peak learning rate (cosine schedule, 10% warm-up); default 2e-4 for SFT, "
                                            "5e-6 for DPO.")
BATCH_SIZE = typer.Option(None, help="Examples per device per forward pass (default 4).")
SEED = typer.Option(None, help="Seed of the LoRA initialisation, data order and split; same seed, same adapter.")
VALIDATION = typer.Option(None, help="Validation file (default: a held-out share of --data).")
EVAL_STEPS = typer.Option(None, help="Validation loss every this many steps.")
PATIENCE = typer.Option(None, help="Stop after this many validation-loss rises in a row while training loss falls.")
GOLDEN = typer.Option([], "--golden", help="Golden set checked for overlap with the training data; repeatable.")
STRICT = typer.Option(None, "--strict/--no-strict", help="Make golden/training overlap an error.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace a previous training output at --output.")
RESUME = typer.Option(False, "--resume-from-checkpoint", help="Continue the interrupted run of --output from its newest "
                                                             "checkpoint, with the same settings; its curves and "
                                                             "evaluations so far are kept.")
EVAL_GOLDEN = typer.Option(None, "--eval-golden", help="Golden set judged during training: the win rate against the "
                                                       "base at validation steps, into curves.csv and training.json.")
EVAL_JUDGE = typer.Option(None, "--eval-judge", help="Judge of --eval-golden (default: openai:gpt-4.1 when "
                                                     "OPENAI_API_KEY is set, else reference).")
EVAL_EVERY = typer.Option(None, "--eval-every", help="Steps between golden evaluations, a multiple of --eval-steps "
                                                     "(default: at each validation step).")
EVAL_ITEMS = typer.Option(None, "--eval-items", help="Golden items judged, a fixed seeded sample (default 50).")
EVAL_TASKS = typer.Option(None, "--eval-tasks", help="lm-eval tasks (comma-separated) scored on the model being "
                                                     "trained at the same steps: forgetting as it happens.")
EVAL_LIMIT = typer.Option(None, "--eval-limit", help="Items per --eval-tasks task (a fraction when < 1; default all).")
EVAL_TASKS_PATH = typer.Option(None, "--eval-tasks-path", help="A folder of local lm-eval task YAML files "
                                                               "(docs/local-tasks.md).")
EVAL_BASELINE = typer.Option(None, "--eval-baseline", help="What --eval-golden compares against: an adapter or "
                                                           "model folder, or a tag (default: the base being trained).")
EVAL_MAX_COST = typer.Option(None, "--max-cost", help="USD for all of --eval-golden's judging in this run; once "
                                                       "spent, later steps record that and training goes on.")
SAVE_CHECKPOINTS = typer.Option(None, "--save-checkpoints/--no-save-checkpoints",
                                help="Keep each validation step's weights in OUTPUT/checkpoint-STEP, to rank them "
                                     "with `evalhub arena OUTPUT/checkpoint-*`.")
SELECT_BY = typer.Option(None, "--select-by", help="The checkpoint kept: loss (lowest validation loss, the default) "
                                                   "or win_rate (highest golden win rate; needs --eval-golden).")


def _task_list(tasks: Optional[str]) -> Optional[list[str]]:
    return None if tasks is None else [name.strip() for name in tasks.split(",") if name.strip()]


def _limit(limit: Optional[float]) -> Optional[float]:
    """A whole number of items as an int (lm-eval reads a float as a fraction only below 1)."""
    return int(limit) if limit is not None and limit >= 1 and float(limit).is_integer() else limit


def _overrides(**flags) -> dict:
    flags["golden"] = flags.get("golden") or None
    targets = flags.get("target_modules")
    if targets is not None:
        names = [name.strip() for name in targets.split(",") if name.strip()]
        flags["target_modules"] = "all-linear" if names == ["all-linear"] else names
    return {name: value for name, value in flags.items() if value is not None}


def _run(train, settings_class, config: Optional[Path], db: Optional[str], overrides: dict, verbose: bool) -> None:
    from evalhub.quiet import library_output_to, progress
    from trainers._common import check_output, describe_settings, training_summary
    from trainers.config import load_settings

    settings = load_settings(settings_class, config, overrides)
    check_output(settings.output, settings.overwrite)  # before the log beside it is written
    method = train.__name__.removeprefix("train_")
    # What will run, before anything heavy loads: every default decided for this machine, spelled out.
    print(describe_settings(settings, method.upper()), file=sys.stderr)
    # The libraries' output (the Trainer's metric dicts and bars, loading bars, warnings) goes to a log beside
    # the output folder, not inside it (the folder holds the adapter and its record only); one bar stays here.
    log = None if verbose else Path(f"{settings.output}.log")
    if log is not None and not settings.resume_from_checkpoint:  # a resumed run's log goes on where it stopped
        log.unlink(missing_ok=True)
    started = time.monotonic()
    with library_output_to(log, on_failure=progress), contextlib.redirect_stdout(sys.stderr):
        # Results on stdout, everything else on stderr: the Trainer prints its logs to stdout.
        callbacks = ()
        if not verbose:
            from trainers._progress import StepProgress  # imports transformers: its warnings go to the log

            callbacks = (StepProgress(method),)
        output = train(settings, db=shared.resolve_db(db), callbacks=callbacks)
    print(training_summary(output, time.monotonic() - started, log), file=sys.stderr)
    print(output)


@train_app.command("sft")
def sft(
    config: Optional[Path] = CONFIG,
    base: Optional[str] = BASE,
    data: Optional[str] = typer.Option(None, help="Training JSONL: instruction/input/output, prompt/completion or messages."),
    output: Optional[Path] = OUTPUT,
    epochs: Optional[float] = EPOCHS,
    max_steps: Optional[int] = MAX_STEPS,
    max_length: Optional[int] = MAX_LENGTH,
    grad_accum: Optional[int] = GRAD_ACCUM,
    bf16: Optional[bool] = BF16,
    gradient_checkpointing: Optional[bool] = GRADIENT_CHECKPOINTING,
    target_modules: Optional[str] = TARGET_MODULES,
    lora_r: Optional[int] = LORA_R,
    lora_alpha: Optional[int] = LORA_ALPHA,
    qlora: Optional[bool] = QLORA,
    neftune_alpha: Optional[float] = typer.Option(None, help="NEFTune noise on the input embeddings (e.g. 5)."),
    packing: Optional[bool] = typer.Option(None, "--packing/--no-packing", help="Pack short examples into max_length blocks."),
    full_finetune: Optional[bool] = typer.Option(None, "--full-finetune/--lora", help="Train every weight instead of an adapter."),
    learning_rate: Optional[float] = LEARNING_RATE,
    batch_size: Optional[int] = BATCH_SIZE,
    seed: Optional[int] = SEED,
    validation: Optional[str] = VALIDATION,
    eval_steps: Optional[int] = EVAL_STEPS,
    patience: Optional[int] = PATIENCE,
    golden: List[str] = GOLDEN,
    strict: Optional[bool] = STRICT,
    eval_golden: Optional[str] = EVAL_GOLDEN,
    eval_judge: Optional[str] = EVAL_JUDGE,
    eval_every: Optional[int] = EVAL_EVERY,
    eval_items: Optional[int] = EVAL_ITEMS,
    select_by: Optional[str] = SELECT_BY,
    eval_tasks: Optional[str] = EVAL_TASKS,
    eval_limit: Optional[float] = EVAL_LIMIT,
    eval_tasks_path: Optional[str] = EVAL_TASKS_PATH,
    eval_baseline: Optional[str] = EVAL_BASELINE,
    max_cost: Optional[float] = EVAL_MAX_COST,
    save_checkpoints: Optional[bool] = SAVE_CHECKPOINTS,
    overwrite: bool = OVERWRITE,
    resume_from_checkpoint: bool = RESUME,
    db: Optional[str] = shared.DB,
    verbose: bool = shared.VERBOSE,
) -> None:
    """Supervised fine-tuning (loss on the completion only) through TRL's SFTTrainer."""
    from trainers.sft import SFTSettings, train_sft

    _run(train_sft, SFTSettings, config, db, _overrides(
        base=base, data=data, output=output, epochs=epochs, max_steps=max_steps, max_length=max_length,
        grad_accum=grad_accum, bf16=bf16, gradient_checkpointing=gradient_checkpointing, target_modules=target_modules,
        lora_r=lora_r, lora_alpha=lora_alpha, qlora=qlora,
        neftune_alpha=neftune_alpha, packing=packing, full_finetune=full_finetune, learning_rate=learning_rate,
        batch_size=batch_size, seed=seed, validation=validation, eval_steps=eval_steps, patience=patience,
        golden=golden, strict=strict, eval_golden=eval_golden, eval_judge=eval_judge, eval_every=eval_every,
        eval_items=eval_items, select_by=select_by, eval_max_cost=max_cost, save_checkpoints=save_checkpoints,
        eval_baseline=eval_baseline,
        eval_tasks=_task_list(eval_tasks), eval_limit=_limit(eval_limit), eval_tasks_path=eval_tasks_path,
        overwrite=overwrite or None, resume_from_checkpoint=resume_from_checkpoint or None), verbose)


@train_app.command("dpo")
def dpo(
    config: Optional[Path] = CONFIG,
    base: Optional[str] = BASE,
    data: Optional[str] = typer.Option(None, help="Preference JSONL: prompt/chosen/rejected."),
    output: Optional[Path] = OUTPUT,
    epochs: Optional[float] = EPOCHS,
    max_steps: Optional[int] = MAX_STEPS,
    max_length: Optional[int] = MAX_LENGTH,
    grad_accum: Optional[int] = GRAD_ACCUM,
    bf16: Optional[bool] = BF16,
    gradient_checkpointing: Optional[bool] = GRADIENT_CHECKPOINTING,
    target_modules: Optional[str] = TARGET_MODULES,
    lora_r: Optional[int] = LORA_R,
    lora_alpha: Optional[int] = LORA_ALPHA,
    qlora: Optional[bool] = QLORA,
    beta: Optional[float] = typer.Option(None, help="DPO beta: how strongly to stay near the reference (the base)."),
    learning_rate: Optional[float] = LEARNING_RATE,
    batch_size: Optional[int] = BATCH_SIZE,
    seed: Optional[int] = SEED,
    validation: Optional[str] = VALIDATION,
    eval_steps: Optional[int] = EVAL_STEPS,
    patience: Optional[int] = PATIENCE,
    golden: List[str] = GOLDEN,
    strict: Optional[bool] = STRICT,
    eval_golden: Optional[str] = EVAL_GOLDEN,
    eval_judge: Optional[str] = EVAL_JUDGE,
    eval_every: Optional[int] = EVAL_EVERY,
    eval_items: Optional[int] = EVAL_ITEMS,
    select_by: Optional[str] = SELECT_BY,
    eval_tasks: Optional[str] = EVAL_TASKS,
    eval_limit: Optional[float] = EVAL_LIMIT,
    eval_tasks_path: Optional[str] = EVAL_TASKS_PATH,
    eval_baseline: Optional[str] = EVAL_BASELINE,
    max_cost: Optional[float] = EVAL_MAX_COST,
    save_checkpoints: Optional[bool] = SAVE_CHECKPOINTS,
    overwrite: bool = OVERWRITE,
    resume_from_checkpoint: bool = RESUME,
    db: Optional[str] = shared.DB,
    verbose: bool = shared.VERBOSE,
) -> None:
    """Direct preference optimisation through TRL's DPOTrainer; the reference is the base (adapter disabled)."""
    from trainers.dpo import DPOSettings, train_dpo

    _run(train_dpo, DPOSettings, config, db, _overrides(
        base=base, data=data, output=output, epochs=epochs, max_steps=max_steps, max_length=max_length,
        grad_accum=grad_accum, bf16=bf16, gradient_checkpointing=gradient_checkpointing, target_modules=target_modules,
        lora_r=lora_r, lora_alpha=lora_alpha, qlora=qlora,
        beta=beta, learning_rate=learning_rate, batch_size=batch_size, seed=seed, validation=validation,
        eval_steps=eval_steps, patience=patience, golden=golden, strict=strict, eval_golden=eval_golden,
        eval_judge=eval_judge, eval_every=eval_every, eval_items=eval_items, select_by=select_by,
        eval_max_cost=max_cost, save_checkpoints=save_checkpoints, eval_baseline=eval_baseline,
        eval_tasks=_task_list(eval_tasks), eval_limit=_limit(eval_limit), eval_tasks_path=eval_tasks_path,
        overwrite=overwrite or None, resume_from_checkpoint=resume_from_checkpoint or None), verbose)
