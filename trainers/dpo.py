"""Direct preference optimisation through TRL's DPOTrainer on {"prompt", "chosen", "rejected"} pairs.

The reference model is the base itself, reached by disabling the LoRA adapter: TRL does this when it is
given a peft config and no ref_model, so there is never a second copy of the base in memory. To run DPO
after SFT, merge the SFT adapter first (`evalhub merge`) and pass the merged model as the base: the
reference is then the SFT model, as DPO intends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from trainers._common import TrainSettings
from trainers.data import preference_rows


@dataclass
class DPOSettings(TrainSettings):
    """DPO settings: the shared ones and the strength of the pull towards the reference."""

    beta: float = 0.1
    # DPO moves a tuned model far with small steps: the alignment handbook's LoRA DPO recipes use 5e-6.
    learning_rate: float = 5e-6


def train_dpo(settings: DPOSettings, db: Path | None = None, callbacks: tuple = ()) -> Path:
    """Train a LoRA adapter with DPO and write it into settings.output with training.json and curves.csv;
    with `db`, record the run and its curves in the store. `callbacks`: extra transformers TrainerCallbacks
    (e.g. a profiler); the overfitting watch is always one."""
    from trainers import _common
    from trainers.data import load_preference_examples

    _common.check_settings(settings)
    if settings.beta <= 0:
        raise UserError(f"beta must be positive, got {settings.beta}")
    train_rows, eval_rows, contamination = _common.load_inputs(settings, load_preference_examples, resumable=True)
    # Heavy imports only once the inputs are known to be good: bad input fails in a second.
    from datasets import Dataset
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

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
    peft_config = _common.lora_config(settings, model)
    with _common.staged_output(settings.output, settings.overwrite, resumable=settings) as staging:
        args = DPOConfig(**_common.trainer_arguments(settings, staging / CHECKPOINTS, bool(eval_rows), resumable=True),
                         beta=settings.beta)
        # Seeds first: they fix the LoRA initialisation (inside the trainer), the data order and dropout.
        set_seed(settings.seed)
        trainer = DPOTrainer(
            model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
            callbacks=[watch, *_common.evaluation_callbacks(settings, staging, golden, tasks), saver, *callbacks],
            train_dataset=Dataset.from_list(preference_rows(train_rows, settings.chat_template)),
            eval_dataset=Dataset.from_list(preference_rows(eval_rows, settings.chat_template)) if eval_rows else None)
        if trainer.ref_model is not None:  # the promise above: no second copy of the base
            raise RuntimeError("DPOTrainer loaded a separate reference model; expected the disabled adapter")
        trainer.train(resume_from_checkpoint=resume_point(settings, staging, saver))
        _common.finish(trainer, watch, staging, "dpo", settings, train_rows, eval_rows, contamination, db,
                       golden, tasks)
    return Path(settings.output)
