"""Supervised fine-tuning through TRL's SFTTrainer: LoRA, QLoRA or full fine-tuning, loss on the completion only.

Every example is a prompt (chat messages) and a completion, so the loss covers the answer and not the
question. NEFTune adds noise to the input embeddings while training (`neftune_alpha`); packing joins short
examples into `max_length` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from trainers._common import TrainSettings


@dataclass
class SFTSettings(TrainSettings):
    """SFT settings: the shared ones (base, data, output, max_steps, lora_r, ...) and these."""

    neftune_alpha: float | None = None  # NEFTune noise scale; 5 is the paper's usual value
    packing: bool = False
    full_finetune: bool = False  # train every weight instead of a LoRA adapter (writes a full model)


def _rows(examples, chat_template: bool) -> list[dict]:
    """TRL prompt-completion rows: conversational (chat template applied by TRL) or plain text."""
    if chat_template:
        return [{"prompt": list(e.prompt), "completion": [{"role": "assistant", "content": e.completion}]}
                for e in examples]
    return [{"prompt": "\n\n".join(m["content"] for m in e.prompt) + "\n", "completion": e.completion}
            for e in examples]


def train_sft(settings: SFTSettings, db: Path | None = None, callbacks: tuple = ()) -> Path:
    """Train on instruction / prompt-completion / chat data and write the adapter (or full model) into
    settings.output with training.json and curves.csv; with `db`, record the run and its curves in the store. `callbacks`: extra
    transformers TrainerCallbacks (e.g. a profiler); the overfitting watch is always one."""
    from trainers import _common
    from trainers.data import load_sft_examples

    _common.check_settings(settings)
    if settings.qlora and settings.full_finetune:
        raise UserError("qlora and full_finetune exclude each other: QLoRA trains an adapter on a 4-bit base")
    train_rows, eval_rows, contamination = _common.load_inputs(settings, load_sft_examples, resumable=True)
    # Heavy imports only once the inputs are known to be good: bad input fails in a second.
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from trainers._curves import OverfittingWatch
    from trainers._resume import CHECKPOINTS
    from trainers._resume_state import SaveEvaluationState, resume_point

    watch = OverfittingWatch(patience=_common.loss_patience(settings))
    # The judge, the tasks' datasets and a baseline's answers before the base loads: a bad one fails fast.
    golden = _common.golden_callback(settings, bool(eval_rows), watch, db)
    tasks = _common.task_callback(settings, bool(eval_rows))
    saver = SaveEvaluationState(watch, golden, tasks)  # what they measured, in each checkpoint, to resume
    tokenizer = _common.load_tokenizer(settings)
    set_seed(settings.seed)
    model = _common.load_base_model(settings)
    peft_config = None if settings.full_finetune else _common.lora_config(settings, model)
    with _common.staged_output(settings.output, settings.overwrite, resumable=settings) as staging:
        args = SFTConfig(**_common.trainer_arguments(settings, staging / CHECKPOINTS, bool(eval_rows), resumable=True),
                         completion_only_loss=True, packing=settings.packing,
                         neftune_noise_alpha=settings.neftune_alpha)
        # Seeds first: they fix the LoRA initialisation (inside the trainer), the data order and dropout.
        set_seed(settings.seed)
        trainer = SFTTrainer(
            model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
            callbacks=[watch, *_common.evaluation_callbacks(settings, staging, golden, tasks), saver, *callbacks],
            train_dataset=Dataset.from_list(_rows(train_rows, settings.chat_template)),
            eval_dataset=Dataset.from_list(_rows(eval_rows, settings.chat_template)) if eval_rows else None)
        trainer.train(resume_from_checkpoint=resume_point(settings, staging, saver))
        if settings.full_finetune:
            tokenizer.save_pretrained(staging)
        _common.finish(trainer, watch, staging, "sft", settings, train_rows, eval_rows, contamination, db,
                       golden, tasks)
    return Path(settings.output)
