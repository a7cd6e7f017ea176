"""What SFT and DPO share: the settings every run has, loading the base (full precision or 4-bit NF4), the
LoRA config, the validation split, the Trainer arguments of the overfitting watch, and the outputs.

A run checks everything it can before spending compute (data, base, target modules, golden-set
contamination), trains in a staging folder, and moves the finished outputs into place at the end, so a
failed run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from evalhub.errors import Interrupted, UserError
from evalhub.quiet import progress
from trainers.data import file_sha256

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
LIBRARIES = ("evalhub", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes")


@dataclass
class TrainSettings:
    """Settings shared by SFT and DPO. YAML keys and CLI flags use these names.

    The defaults are for real models (a 1B-70B base on a GPU): a LoRA learning rate of 2e-4, one epoch,
    sequences of up to 1024 tokens, an effective batch of 16 (4 per step, 4 accumulated), bf16 where the
    GPU supports it and gradient checkpointing on GPUs. The toy world's values (a 0.7M-parameter model that
    wants 3e-3 and 60 steps) live only in trainers/configs/toy_*.yaml.
    """

    base: Path
    data: Path
    output: Path
    epochs: float = 1.0  # passes over the training data: the usual length of a run
    max_steps: int | None = None  # optimizer steps; when given, it wins over epochs
    lora_r: int = 16
    lora_alpha: int | None = None  # defaults to 2r
    lora_dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"  # module names (e.g. [q_proj, v_proj]) or "all-linear"
    qlora: bool = False  # 4-bit NF4 base with double quantization (bitsandbytes), LoRA on top
    learning_rate: float = 2e-4
    batch_size: int = 4  # examples per device per forward pass
    grad_accum: int = 4  # forward passes accumulated into one optimizer step (effective batch: batch_size x this)
    max_length: int = 1024  # tokens per example (prompt and answer); longer ones are truncated
    seed: int = 0
    validation: Path | None = None  # a validation file; without one, validation_fraction of the data is held out
    validation_fraction: float = 0.1  # 0 turns the overfitting watch off
    eval_steps: int = 50
    # stop after this many validation-loss rises in a row while training loss falls; with select_by: win_rate,
    # after this many golden evaluations without a better win rate
    patience: int = 3
    logging_steps: int = 10
    bf16: bool | None = None  # None: on where the GPU supports bfloat16, off on CPUs and older GPUs
    gradient_checkpointing: bool | None = None  # None: on when training on a GPU (saves memory), off on a CPU
    chat_template: bool = True  # train on chat-templated prompts, as evaluation sends them by default
    golden: list[Path] = field(default_factory=list)  # golden sets checked for contamination before training
    strict: bool = False  # contamination found in a golden set is an error instead of a warning
    overwrite: bool = False  # replace a previous training output at `output` (without it, that is refused)
    # SFT and DPO: continue an interrupted run of `output` from its newest checkpoint (trainers/_resume.py)
    resume_from_checkpoint: bool = False
    # Evaluation inside training (trainers/golden_eval.py): the win rate against the base on a golden set.
    eval_golden: Path | None = None  # golden set judged at validation steps; None: no golden evaluation
    eval_judge: str | None = None  # None: openai:gpt-4.1 when OPENAI_API_KEY is set, else the reference judge
    eval_every: int | None = None  # steps between golden evaluations (a multiple of eval_steps); None: eval_steps
    eval_items: int = 50  # a fixed seeded sample of the golden set
    eval_max_new_tokens: int = 64  # tokens per answer, as compare's default
    select_by: str = "loss"  # the checkpoint kept: lowest validation loss, or highest win_rate (needs eval_golden)
    eval_baseline: str | None = None  # what the golden evaluation compares against: an adapter, model or tag;
    # None: the base being trained (the adapter disabled)
    eval_max_cost: float | None = None  # USD for all of the run's golden judging; None: no limit
    save_checkpoints: bool = False  # keep each validation step's weights in output/checkpoint-STEP (for `arena`)
    # lm-eval tasks scored on the model being trained at the same steps (trainers/task_eval.py): forgetting
    eval_tasks: list[str] = field(default_factory=list)
    eval_limit: float | None = None  # items per task (a fraction when < 1); None: all
    eval_tasks_path: Path | None = None  # a folder of local lm-eval task YAML files (docs/local-tasks.md)


@dataclass(frozen=True)
class Effective:
    """What a run actually uses where a setting says 'decide for this machine' (None), printed before training
    and recorded in training.json."""

    device: str
    bf16: bool
    gradient_checkpointing: bool
    length: str  # "N steps" or "E epoch(s)"
    effective_batch: int
    base_dtype: str


def effective(settings: TrainSettings) -> Effective:
    import torch

    gpu = torch.cuda.is_available()
    bf16 = settings.bf16 if settings.bf16 is not None else bool(gpu and torch.cuda.is_bf16_supported())
    if settings.bf16 and not (gpu and torch.cuda.is_bf16_supported()):
        raise UserError("bf16 needs a GPU that supports bfloat16; drop --bf16 (the default decides per machine)")
    checkpointing = settings.gradient_checkpointing if settings.gradient_checkpointing is not None else gpu
    length = f"{settings.max_steps} steps" if settings.max_steps else f"{settings.epochs:g} epoch(s)"
    # A LoRA base in bf16 halves its memory; full fine-tuning keeps float32 master weights (mixed precision).
    base_dtype = "bfloat16" if bf16 and not getattr(settings, "full_finetune", False) and not settings.qlora else "float32"
    return Effective(device="cuda" if gpu else "cpu", bf16=bf16, gradient_checkpointing=checkpointing, length=length,
                     effective_batch=settings.batch_size * settings.grad_accum, base_dtype=base_dtype)


def describe_settings(settings: TrainSettings, method: str) -> str:
    """The effective settings in a few lines, printed before training starts."""
    run = effective(settings)
    lora = ("full fine-tuning" if getattr(settings, "full_finetune", False) else
            f"{'QLoRA' if settings.qlora else 'LoRA'} r={settings.lora_r} alpha={settings.lora_alpha or 2 * settings.lora_r} "
            f"dropout={settings.lora_dropout:g} on {settings.target_modules}")
    return (f"{method} on {settings.base} ({run.device}, base in {run.base_dtype}): {lora}\n"
            f"  length {run.length}, learning rate {settings.learning_rate:g} (cosine, 10% warm-up), batch "
            f"{settings.batch_size} x {settings.grad_accum} accumulated = {run.effective_batch}, max length "
            f"{settings.max_length}\n"
            f"  bf16 {'on' if run.bf16 else 'off'}, gradient checkpointing {'on' if run.gradient_checkpointing else 'off'}, "
            f"seed {settings.seed}, validation every {settings.eval_steps} steps")


def settings_dict(settings) -> dict[str, Any]:
    """The settings as JSON-ready values (paths as text), for training.json."""
    def plain(value):
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {name: plain(value) for name, value in dataclasses.asdict(settings).items()}


def check_settings(settings: TrainSettings, at_validation: bool = True) -> None:
    numbers = {"max_steps": settings.max_steps, "lora_r": settings.lora_r, "batch_size": settings.batch_size,
               "grad_accum": settings.grad_accum, "max_length": settings.max_length,
               "eval_steps": settings.eval_steps, "logging_steps": settings.logging_steps}
    for name, value in numbers.items():
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    if not settings.max_steps and not settings.epochs > 0:
        raise UserError(f"epochs must be positive, got {settings.epochs}; or pass --max-steps")
    if not 0 <= settings.validation_fraction < 1:
        raise UserError(f"validation_fraction must be in [0, 1), got {settings.validation_fraction}")
    if settings.learning_rate <= 0:
        raise UserError(f"learning_rate must be positive, got {settings.learning_rate}")
    effective(settings)  # refuses bf16 where the machine has none
    check_golden_eval(settings, at_validation)


def check_golden_eval(settings: TrainSettings, at_validation: bool = True) -> None:
    """The golden evaluation's settings, checked before anything loads. `at_validation` False: the method
    has no validation steps (RL), so the evaluations run every eval_every (or eval_steps) training steps."""
    if not at_validation:
        if settings.select_by != "loss" or settings.save_checkpoints:
            raise UserError("--select-by win_rate and --save-checkpoints are for `evalhub train sft|dpo` (they keep "
                            "validation steps' weights); RL writes its last step: rank RL runs with `evalhub arena`")
        if settings.eval_every is not None and settings.eval_every < 1:
            raise UserError(f"eval_every must be at least 1, got {settings.eval_every}")
        if settings.eval_max_cost is not None and settings.eval_max_cost <= 0:
            raise UserError(f"--max-cost must be a positive number of USD, got {settings.eval_max_cost}")
        if settings.eval_golden is not None:
            from evalhub.golden import load_golden

            load_golden(settings.eval_golden)
        return
    if settings.save_checkpoints and settings.validation is None and settings.validation_fraction == 0:
        raise UserError("save_checkpoints keeps the weights of each validation step: keep a validation split "
                        "(validation_fraction > 0) or pass --validation FILE")
    if settings.eval_max_cost is not None and settings.eval_max_cost <= 0:
        raise UserError(f"--max-cost must be a positive number of USD, got {settings.eval_max_cost}")
    if settings.eval_tasks and settings.validation is None and settings.validation_fraction == 0:
        raise UserError("--eval-tasks runs at validation steps: keep a validation split (validation_fraction > 0) "
                        "or pass --validation FILE")
    if settings.eval_tasks and settings.eval_every is not None and settings.eval_every % settings.eval_steps:
        raise UserError(f"--eval-every {settings.eval_every} must be a multiple of --eval-steps "
                        f"({settings.eval_steps}): the evaluations run at validation steps")
    if settings.select_by not in ("loss", "win_rate"):
        raise UserError(f"select_by must be loss or win_rate, got {settings.select_by!r}")
    if settings.eval_golden is None:
        if settings.select_by == "win_rate":
            raise UserError("--select-by win_rate needs a win rate: pass --eval-golden FILE")
        return
    for name in ("eval_items", "eval_max_new_tokens", "eval_every"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    if settings.validation is None and settings.validation_fraction == 0:
        raise UserError("--eval-golden runs at validation steps: keep a validation split (validation_fraction > 0) "
                        "or pass --validation FILE")
    if settings.eval_every is not None and settings.eval_every % settings.eval_steps:
        raise UserError(f"--eval-every {settings.eval_every} must be a multiple of --eval-steps "
                        f"({settings.eval_steps}): the golden evaluation runs at validation steps")
    from evalhub.golden import load_golden

    load_golden(settings.eval_golden)  # a bad golden file fails now, not after the base has loaded


def refuse_golden_eval(settings: TrainSettings, method: str) -> None:
    """The golden evaluation runs in SFT and DPO only, for now: elsewhere its settings are refused, not ignored."""
    if settings.eval_golden is not None or settings.select_by != "loss" or settings.save_checkpoints \
            or settings.eval_max_cost is not None or settings.eval_tasks:
        raise UserError(f"eval_golden, eval_tasks, select_by, max_cost and save_checkpoints are for `evalhub train sft|dpo`; drop "
                        f"them from the {method} settings and compare the adapter afterwards with `evalhub compare`")


def refuse_resume(settings: TrainSettings) -> None:
    if settings.resume_from_checkpoint:
        raise UserError("--resume-from-checkpoint is for `evalhub train sft|dpo`; this method writes no resumable "
                        "checkpoints: rerun it from the start")


def loss_patience(settings: TrainSettings) -> int:
    """The overfitting watch's patience: none when the win rate selects (its patience then follows the win
    rate, in trainers/golden_eval.py)."""
    return 0 if settings.select_by == "win_rate" else settings.patience


def golden_callback(settings: TrainSettings, has_validation: bool, watch=None, db=None, at_steps: bool = False):
    """The GoldenEval callback for `eval_golden`, or None; the judge is checked (key, name, reachable) first."""
    if settings.eval_golden is None:
        return None
    if not has_validation and not at_steps:
        raise UserError("--eval-golden runs at validation steps, and this run has no validation rows; pass "
                        "--validation FILE")
    from evalhub.judge import check_judge
    from trainers.golden_eval import GoldenEval, default_judge, sample_items

    judge = settings.eval_judge or default_judge()
    if settings.eval_judge is None:
        progress(f"golden evaluation: judge {judge} (pass --eval-judge to choose)")
    check_judge(judge)
    items = sample_items(settings.eval_golden, settings.eval_items, settings.seed)
    baseline = {}
    if settings.eval_baseline:
        from trainers.golden_eval import baseline_answers

        progress(f"golden evaluation: the baseline {settings.eval_baseline} answers {len(items)} items")
        baseline = baseline_answers(settings.eval_baseline, items, settings.eval_max_new_tokens, settings.seed, db)
    return GoldenEval(items=items, judge=judge, every=settings.eval_every or settings.eval_steps,
                      golden_file=str(settings.eval_golden), max_new_tokens=settings.eval_max_new_tokens,
                      seed=settings.seed, select=settings.select_by == "win_rate", max_cost=settings.eval_max_cost,
                      patience=settings.patience if settings.select_by == "win_rate" else 0, watch=watch,
                      baseline=baseline, baseline_name=settings.eval_baseline, at_steps=at_steps)


def task_callback(settings: TrainSettings, has_validation: bool, at_steps: bool = False):
    """The TaskEval callback for `eval_tasks`, or None; every task's dataset is loaded now, before training."""
    if not settings.eval_tasks:
        return None
    if not has_validation and not at_steps:
        raise UserError("--eval-tasks runs at validation steps, and this run has no validation rows; pass "
                        "--validation FILE")
    from trainers.task_eval import TaskEval

    return TaskEval(tasks=list(settings.eval_tasks), every=settings.eval_every or settings.eval_steps,
                    limit=settings.eval_limit, tasks_path=settings.eval_tasks_path, seed=settings.seed,
                    batch_size=settings.batch_size, at_steps=at_steps)


def evaluation_callbacks(settings: TrainSettings, staging: Path, golden, tasks=None) -> list:
    """The callbacks that evaluate or keep weights at validation steps: the golden evaluation and the tasks
    (when asked), then the per-step checkpoints (save_checkpoints), so a checkpoint's step has its numbers."""
    callbacks = [c for c in (golden, tasks) if c is not None]
    if settings.save_checkpoints:
        from trainers._checkpoints import KeepEvaluatedCheckpoints

        callbacks.append(KeepEvaluatedCheckpoints(staging))
    return callbacks


def check_contamination(settings: TrainSettings) -> list[dict]:
    """Report golden items found in the training data (stderr); with `strict`, refuse to train."""
    from evalhub.golden import load_golden
    from trainers.contamination import contamination_report

    findings = []
    for golden_file in settings.golden:
        for finding in contamination_report(load_golden(golden_file), settings.data):
            progress(f"contamination: {golden_file}: {finding.describe(settings.data)}")
            findings.append({"golden": str(golden_file), **dataclasses.asdict(finding)})
    if findings and settings.strict:
        raise UserError(f"{len(findings)} golden item(s) appear in {settings.data} (listed above); remove them from "
                        f"the training data, or drop --strict to train anyway")
    return findings


def split_validation(examples: list, validation: list | None, fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): the validation file when given, else a seeded random `fraction` of the data."""
    import random

    if validation is not None:
        return examples, validation
    if fraction == 0 or len(examples) < 2:
        return examples, []
    count = max(1, round(fraction * len(examples)))
    held_out = set(random.Random(seed).sample(range(len(examples)), count))
    return ([e for i, e in enumerate(examples) if i not in held_out],
            [e for i, e in enumerate(examples) if i in held_out])


def load_inputs(settings: TrainSettings, load, resumable: bool = False) -> tuple[list, list, list[dict]]:
    """The training and validation rows (`load` reads a data file), the output folder checked (and, for a
    `resumable` method, the interrupted run to resume), and the contamination found: every trainer's checks
    before its heavy imports, so bad input fails in a second."""
    examples = load(settings.data)
    validation = load(settings.validation) if settings.validation else None
    train_rows, eval_rows = split_validation(examples, validation, settings.validation_fraction, settings.seed)
    check_output(settings.output, settings.overwrite)
    if resumable:
        from trainers._resume import check_resume

        check_resume(settings)
    else:
        refuse_resume(settings)
    return train_rows, eval_rows, check_contamination(settings)


def load_tokenizer(settings: TrainSettings):
    """The base's tokenizer as evaluation loads it (the same pad token), which must have a chat template when
    training on chat-templated prompts."""
    from evalhub.models import load_tokenizer as load

    tokenizer = load(settings.base, label="the base model", flag="--base")
    if settings.chat_template and not tokenizer.chat_template:
        raise UserError(f"the tokenizer of {settings.base} has no chat template; set chat_template: false")
    return tokenizer


def load_base_model(settings: TrainSettings):
    """The base in float32, or in 4-bit NF4 with double quantization for QLoRA (the model layer's 4-bit
    config, so evaluation with --load-in-4bit sees the base the adapter was trained on)."""
    from evalhub.models import load_causal_lm

    # No device placement here: the Trainer moves the model to its device itself.
    model = load_causal_lm(settings.base, dtype=effective(settings).base_dtype, load_in_4bit=settings.qlora,
                           device=None, label="the base model", flag="--base")
    if settings.qlora:
        import bitsandbytes as bnb
        from peft import prepare_model_for_kbit_training

        # bitsandbytes 0.50 on a CPU with AVX512-BF16 repacks 4-bit weights for inference at the first eval-mode
        # forward and never back; training after a validation pass then backpropagates through a kernel with no
        # autograd ("gemv_4bit: an autograd kernel was not registered") and the LoRA gradients come out wrong
        # (measured: a first-layer gradient shrank 16-fold). Keep the trainable layout.
        for module in model.modules():
            if isinstance(module, bnb.nn.Linear4bit):
                module.support_avx512bf16_for_cpu = False
        model = prepare_model_for_kbit_training(model,
                                                use_gradient_checkpointing=effective(settings).gradient_checkpointing)
    return model


def lora_config(settings: TrainSettings, model):
    """peft LoRA config; named target modules must exist in the model (peft's own error is a stack trace)."""
    import torch
    from peft import LoraConfig

    targets = settings.target_modules
    if isinstance(targets, str) and targets != "all-linear":
        targets = [targets]
    if targets != "all-linear":
        names = [name for name, _ in model.named_modules()]
        missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
        if missing:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                             if isinstance(m, torch.nn.Linear) and n != "lm_head"})
            raise UserError(f"target module(s) {missing} do not exist in {settings.base}; "
                            f"choose among {linear} or 'all-linear'")
    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha or 2 * settings.lora_r,
                      lora_dropout=settings.lora_dropout, target_modules=targets, task_type="CAUSAL_LM")


def trainer_arguments(settings: TrainSettings, checkpoints: Path, has_validation: bool,
                      resumable: bool = False) -> dict[str, Any]:
    """TrainingArguments shared by SFTConfig and DPOConfig.

    With a validation set, validation loss is computed at the start and every `eval_steps`; each new best is
    checkpointed (weights only) and restored at the end, so the adapter written is the best one seen.
    `resumable` (SFT, DPO): every validation step (every `eval_steps` steps without validation) writes a whole
    checkpoint instead (weights, optimizer, scheduler, RNG), the newest and the best kept, to resume from.
    """
    run = effective(settings)
    watch: dict[str, Any] = {"save_strategy": "no"}
    if has_validation:
        watch = dict(eval_strategy="steps", eval_steps=settings.eval_steps, eval_on_start=True,
                     per_device_eval_batch_size=settings.batch_size, save_strategy="best", save_only_model=True,
                     save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="eval_loss",
                     greater_is_better=False)
        if settings.select_by == "win_rate":  # trainers/golden_eval.py: grows exactly at each new best win rate
            from trainers.golden_eval import SELECTION_METRIC

            watch.update(metric_for_best_model=f"eval_{SELECTION_METRIC}", greater_is_better=True)
    if resumable:
        # save_total_limit=1 with load_best_model_at_end keeps two: the best and the newest (transformers).
        watch.update(save_strategy="steps", save_steps=settings.eval_steps, save_only_model=False, save_total_limit=1)
        if settings.resume_from_checkpoint and has_validation:
            watch["eval_on_start"] = False  # step 0 was evaluated by the interrupted run: its numbers are restored
    # A length in steps (max_steps) wins over epochs; warm-up is 10% of the run either way.
    length = (dict(max_steps=settings.max_steps, warmup_steps=max(1, settings.max_steps // 10)) if settings.max_steps
              else dict(num_train_epochs=settings.epochs, warmup_steps=0.1))
    return dict(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine", **length,
        # The overfitting watch compares training loss at evaluation steps: log at least as often.
        logging_steps=min(settings.logging_steps, settings.eval_steps) if has_validation else settings.logging_steps,
        report_to=[], use_cpu=run.device == "cpu", bf16=run.bf16, seed=settings.seed,
        data_seed=settings.seed, max_length=settings.max_length, dataloader_num_workers=0,
        gradient_checkpointing=run.gradient_checkpointing, **watch,
    )


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def weights_sha256(folder: Path) -> str:
    """The adapter's identity: sha256 of adapter_model.safetensors (as `models.adapter_hash` in the store);
    for a full model, of its safetensors files' hashes in name order."""
    adapter = folder / "adapter_model.safetensors"
    if adapter.exists():
        return file_sha256(adapter)
    import hashlib

    digest = hashlib.sha256()
    for shard in sorted(folder.glob("*.safetensors")):
        digest.update(file_sha256(shard).encode())
    return digest.hexdigest()


def check_output(output: Path, overwrite: bool = False) -> None:
    """Refuse an output that holds anything: a previous training output (a folder with training.json) is
    replaced only with `overwrite`, anything else never (it may be a model or data evalhub did not write)."""
    output = Path(output)
    if not output.exists() or (output.is_dir() and not any(output.iterdir())):
        return
    if not output.is_dir() or not (output / "training.json").exists():
        raise UserError(f"{output} exists and is not a training output; choose another --output or empty it")
    if not overwrite:
        raise UserError(f"{output} already holds a trained model; choose another --output, or pass --overwrite to "
                        "replace it")


@contextlib.contextmanager
def staged_output(output: Path, overwrite: bool = False, resumable: TrainSettings | None = None) -> Iterator[Path]:
    """A fresh folder beside `output` to train into; on success it replaces `output` (a previous training output
    only with `overwrite`), on any error it is removed. With `resumable` (the settings of an SFT or DPO run) it
    is the run's staging folder of trainers/_resume.py, kept after an error once it holds a checkpoint."""
    output = Path(output)
    check_output(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    if resumable is not None:
        from trainers._resume import open_staging

        staging = open_staging(resumable)
    else:
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        yield staging
    except BaseException as error:
        if resumable is not None:
            from trainers._resume import checkpoint_step, last_checkpoint

            checkpoint = last_checkpoint(staging)
            if checkpoint is not None:
                resume = (f"the run is kept at step {checkpoint_step(checkpoint)} in {staging}: rerun with "
                          "--resume-from-checkpoint to continue it")
                if isinstance(error, KeyboardInterrupt):
                    raise Interrupted(f"training stopped; {resume}") from None
                progress(f"training failed; {resume}")
                raise
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging / ".checkpoints", ignore_errors=True)  # the Trainer's checkpoints: the best is restored
    if resumable is not None:
        from trainers._resume import SETTINGS_FILE

        (staging / SETTINGS_FILE).unlink(missing_ok=True)  # the starting settings, kept only to check a resume
    (staging / "README.md").unlink(missing_ok=True)  # peft's empty model card: the record is training.json
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)


def finish(trainer, watch, staging: Path, method: str, settings: TrainSettings, train_rows: list, eval_rows: list,
           contamination: list[dict], db: Path | None, golden=None, tasks=None) -> dict:
    """Save the (best) weights, then training.json and curves.csv beside them, and the run in the store."""
    from trainers._curves import curve_points

    if watch.reason:
        progress(f"early stop at step {watch.stopped_at}: {watch.reason}")
    trainer.model.save_pretrained(staging, safe_serialization=True)
    points = curve_points(trainer.state.log_history, loss_is_nll=method == "sft")
    validation = settings.validation
    data = {"train": {"path": str(settings.data), "sha256": file_sha256(settings.data), "rows": len(train_rows)},
            "validation": {"path": str(validation) if validation else None,
                           "sha256": file_sha256(validation) if validation else None, "rows": len(eval_rows),
                           # held out of --data: its line numbers, so the split can be checked
                           "lines": None if validation else sorted(e.line for e in eval_rows)}}
    metrics = final_metrics(trainer, watch, points)
    extra = {}
    if any(p.split == "eval" for p in points):
        extra = {"selection": {"by": "loss", "step": metrics.get("best_step"), "value": metrics.get("eval_loss_best")}}
    if golden is not None:
        extra.update(golden_record(golden, points, metrics, settings))
    if tasks is not None:
        extra["task_eval"] = task_record(tasks, points, extra.get("golden_eval"))
    return write_record(staging, method, settings, data, metrics, contamination, points, db, extra)


def task_record(tasks, points, golden_eval: dict | None) -> dict:
    """The tasks' per-step accuracies onto the eval curve points (acc_<task> columns) and the golden
    evaluation's step records, and training.json's `task_eval` entry."""
    by_step = {r["step"]: r for r in tasks.records if "tasks_error" not in r}
    for point in points:
        if point.split == "eval" and point.step in by_step:
            point.golden = {**(point.golden or {}), **{k: v for k, v in by_step[point.step].items() if k != "step"}}
    for record in (golden_eval or {}).get("steps", []):
        record.update({k: v for k, v in by_step.get(record["step"], {}).items() if k != "step"})
    return tasks.summary()


def golden_record(golden, points, metrics: dict, settings: TrainSettings) -> dict:
    """The golden evaluation's per-step results onto the eval curve points, and training.json's
    `golden_eval` and `selection` entries."""
    from trainers._curves import GOLDEN_COLUMNS

    by_step = {r["step"]: r for r in golden.records}
    for point in points:
        if point.split == "eval" and point.step in by_step and "eval_error" not in by_step[point.step]:
            point.golden = {column: by_step[point.step][column] for column in GOLDEN_COLUMNS}
    if settings.select_by == "win_rate":
        step = metrics.get("best_step") if golden.best_step is not None else None
        value = by_step[step]["win_rate"] if step in by_step else None
        selection = {"by": "win_rate", "step": step, "value": value}
    else:
        selection = {"by": "loss", "step": metrics.get("best_step"), "value": metrics.get("eval_loss_best")}
    return {"golden_eval": golden.summary(), "selection": selection}


def write_record(staging: Path, method: str, settings: TrainSettings, data: dict, metrics: dict,
                 contamination: list[dict], points, db: Path | None, extra: dict | None = None) -> dict:
    """training.json and curves.csv beside the weights, and the run with its curves in the store (when `db`)."""
    from trainers._curves import write_curves

    write_curves(points, staging / "curves.csv")
    adapter_hash = weights_sha256(staging)
    record = {"method": method, "adapter_sha256": adapter_hash, "config": settings_dict(settings),
              "effective": dataclasses.asdict(effective(settings)),
              "seed": settings.seed, "versions": versions(), "data": data, "metrics": metrics,
              "contamination": contamination, "curves": "curves.csv", **(extra or {})}
    (staging / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if db is not None:
        from evalhub.store import save_training_run

        save_training_run(adapter_hash, str(Path(settings.output).resolve()), method, record,
                          [dataclasses.asdict(p) for p in points], db)
    return record


def final_metrics(trainer, watch, points) -> dict[str, Any]:
    """What the run ended with: steps, losses, the best validation point, and why it stopped."""
    state = trainer.state
    train = [p for p in points if p.split == "train"]
    evals = [p for p in points if p.split == "eval"]
    runtime = next((e["train_runtime"] for e in reversed(state.log_history) if "train_runtime" in e), None)
    tokens = next((e["num_tokens"] for e in reversed(state.log_history) if "num_tokens" in e), None)
    metrics: dict[str, Any] = {
        "steps": state.global_step, "train_loss_final": train[-1].loss if train else None,
        "train_runtime_s": runtime, "train_tokens": tokens,
        "stopped_early": watch.stopped_at is not None, "stop_reason": watch.reason,
    }
    if watch.resumed_from is not None:
        # The runtime and token count above are the libraries' counts for the resumed part only.
        metrics["resumed_from_step"] = watch.resumed_from
    if evals:
        # The Trainer restored the best checkpoint (never the step-0 evaluation, which has none).
        best_step = state.best_global_step or min(evals[1:] or evals, key=lambda p: p.loss).step
        best = next(p for p in evals if p.step == best_step)
        metrics.update(eval_loss_start=evals[0].loss, eval_loss_final=evals[-1].loss, best_step=best.step,
                       eval_loss_best=best.loss, eval_perplexity_best=best.perplexity,
                       eval_reward_margin_start=evals[0].reward_margin, eval_reward_margin_best=best.reward_margin)
    quantized = sum(type(m).__module__.startswith("bitsandbytes") for m in trainer.model.modules())
    if quantized:
        metrics["base_4bit_layers"] = quantized
    return metrics


def training_summary(output: Path, seconds: float, log: Path | None) -> str:
    """The run in a few lines, from its training.json: steps, losses, the best step, time, where it went."""
    record = json.loads((Path(output) / "training.json").read_text())
    metrics = record["metrics"]

    def number(key: str) -> str:
        value = metrics.get(key)
        return "–" if value is None else f"{value:.4g}"

    resumed = f" (resumed from step {metrics['resumed_from_step']})" if metrics.get("resumed_from_step") else ""
    lines = [f"trained {metrics['steps']} steps in {seconds:.0f} s{resumed}: final training loss "
             f"{number('train_loss_final')}"]
    if metrics.get("eval_loss_start") is not None:
        lines.append(f"  validation loss {number('eval_loss_start')} at the start, {number('eval_loss_final')} at the "
                     f"end, best {number('eval_loss_best')} at step {metrics['best_step']} (the weights kept)")
    if metrics.get("stopped_early"):
        lines.append(f"  stopped early: {metrics['stop_reason']}")
    golden = record.get("golden_eval")
    if golden:
        rated = [r for r in golden["steps"] if r.get("win_rate") is not None]
        failed = [r["step"] for r in golden["steps"] if "eval_error" in r]
        if rated:
            lines.append(f"  win rate against the base ({golden['judge']}, {len(golden['items'])} items): "
                         f"{rated[0]['win_rate']:.3f} at step {rated[0]['step']}, {rated[-1]['win_rate']:.3f} at step "
                         f"{rated[-1]['step']}")
        if failed:
            lines.append(f"  the judge failed at step(s) {failed} (training.json golden_eval)")
    tasks = record.get("task_eval")
    if tasks:
        scored = [r for r in tasks["steps"] if "tasks_error" not in r]
        for column in sorted({k for r in scored for k in r if k.startswith("acc_")}):
            lines.append(f"  {column.removeprefix('acc_')} accuracy: {scored[0][column]:.3f} at step "
                         f"{scored[0]['step']}, {scored[-1][column]:.3f} at step {scored[-1]['step']}")
    if golden:
        selection = record.get("selection") or {}
        if selection.get("by") == "win_rate":
            lines.append(f"  kept the checkpoint of step {selection.get('step')} (best win rate "
                         f"{selection.get('value')})")
    lines.append(f"  adapter: {output}")
    from trainers._checkpoints import saved_checkpoints

    kept = saved_checkpoints(output)
    if kept:
        lines.append(f"  {len(kept)} checkpoints in {output}/checkpoint-* (rank them: evalhub arena "
                     f"{output}/checkpoint-*)")
    if log is not None:
        lines.append(f"  the libraries' output: {log}")
    return "\n".join(lines)
