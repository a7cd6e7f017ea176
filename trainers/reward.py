"""Reward models through TRL's RewardTrainer on {"prompt", "chosen", "rejected"} pairs (the DPO format).

The base gets a one-output score head and a LoRA adapter; both are trained (the head is new, so it is saved
with the adapter through peft's `modules_to_save`). The loss is Bradley-Terry's: -log sigmoid(r(chosen) -
r(rejected)). A held-out split (the validation file, or `validation_fraction` of the data) reports preference
accuracy, the share of pairs whose chosen answer scores above the rejected one, during training (TRL's
per-batch mean, every `eval_steps`) and after it (computed pair by pair on the weights written).

The result is a reward model folder for `evalhub rm eval`, the `rm:PATH` judge and `evalhub train grpo
--reward rm:PATH`; it is not a generator, so compare does not take it as a model.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from evalhub.errors import UserError
from evalhub.quiet import progress
from trainers._common import TrainSettings
from trainers.data import preference_rows

RM_CURVE_COLUMNS = ("step", "split", "loss", "perplexity", "reward_margin", "accuracy")


@dataclass
class RMSettings(TrainSettings):
    """Reward-model settings: the shared ones (base, data, output, max_steps, lora_r, ...) and this."""

    # Pulls rewards towards mean zero (Eisenstein et al. 2023's auxiliary loss; 0.01 is their value); None: off.
    center_rewards_coefficient: float | None = None


def preference_accuracy(scorer, examples) -> dict:
    """Accuracy (chosen scored above rejected; a tie counts as wrong) and mean margin over `examples`."""
    rewards = scorer.score([(e.prompt, a) for e in examples for a in (e.chosen, e.rejected)])
    margins = [rewards[2 * k] - rewards[2 * k + 1] for k in range(len(examples))]
    return {"n": len(examples), "accuracy": sum(m > 0 for m in margins) / len(margins) if margins else None,
            "margin": sum(margins) / len(margins) if margins else None}


def train_rm(settings: RMSettings, db: Path | None = None, callbacks: tuple = ()) -> Path:
    """Train a reward model (LoRA + score head) and write it into settings.output with training.json and
    curves.csv; with `db`, record the run and its curves in the store."""
    from trainers import _common
    from trainers.data import load_preference_examples

    _common.check_settings(settings)
    _common.refuse_golden_eval(settings, "rm")
    if settings.center_rewards_coefficient is not None and settings.center_rewards_coefficient < 0:
        raise UserError(f"center_rewards_coefficient must be 0 or more, got {settings.center_rewards_coefficient}")
    train_rows, eval_rows, contamination = _common.load_inputs(settings, load_preference_examples)
    # Heavy imports only once the inputs are known to be good: bad input fails in a second.
    from datasets import Dataset
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    from evalhub.models.reward import RewardModel, load_sequence_classifier
    from trainers._curves import OverfittingWatch

    tokenizer = _common.load_tokenizer(settings)
    run = _common.effective(settings)
    set_seed(settings.seed)  # the score head is initialised at load
    model, _ = load_sequence_classifier(settings.base, dtype=run.base_dtype, load_in_4bit=settings.qlora)
    if settings.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=run.gradient_checkpointing)
    peft_config = _common.lora_config(settings, model)
    peft_config.task_type = "SEQ_CLS"
    peft_config.modules_to_save = ["score"]  # the new head trains in full and is saved with the adapter
    with _common.staged_output(settings.output, settings.overwrite) as staging:
        arguments = _common.trainer_arguments(settings, staging / ".checkpoints", bool(eval_rows))
        args = RewardConfig(**arguments, center_rewards_coefficient=settings.center_rewards_coefficient)
        watch = OverfittingWatch(patience=settings.patience)
        set_seed(settings.seed)
        trainer = RewardTrainer(
            model=model, args=args, processing_class=tokenizer, peft_config=peft_config, callbacks=[watch, *callbacks],
            train_dataset=Dataset.from_list(preference_rows(train_rows, settings.chat_template)),
            eval_dataset=Dataset.from_list(preference_rows(eval_rows, settings.chat_template)) if eval_rows else None)
        trainer.train()
        _finish(trainer, watch, staging, settings, train_rows, eval_rows, contamination, db,
                RewardModel(trainer.model, tokenizer, settings.chat_template, settings.max_length))
    return Path(settings.output)


def _finish(trainer, watch, staging: Path, settings: RMSettings, train_rows, eval_rows, contamination, db, scorer):
    """The weights, the held-out accuracy of the weights written, training.json and curves.csv (with accuracy)."""
    from trainers import _common
    from trainers._curves import curve_points
    from trainers.data import file_sha256

    if watch.reason:
        progress(f"early stop at step {watch.stopped_at}: {watch.reason}")
    trainer.model.save_pretrained(staging, safe_serialization=True)
    history = trainer.state.log_history
    points = curve_points(history, loss_is_nll=False)
    margins = {int(e.get("step", 0)): e for e in history if "eval_loss" in e}
    for point in points:  # RewardTrainer logs its margin as eval_margin, not DPO's eval_rewards/margins
        if point.split == "eval" and point.step in margins:
            point.reward_margin = margins[point.step].get("eval_margin")
    metrics = _common.final_metrics(trainer, watch, points)
    if eval_rows:
        held_out = preference_accuracy(scorer, eval_rows)
        metrics.update(eval_accuracy=held_out["accuracy"], eval_margin=held_out["margin"],
                       eval_accuracy_start=margins[min(margins)].get("eval_accuracy") if margins else None)
        progress(f"held-out preference accuracy {held_out['accuracy']:.3f} on {held_out['n']} pairs, "
                 f"mean margin {held_out['margin']:.3f}")
    data = {"train": {"path": str(settings.data), "sha256": file_sha256(settings.data), "rows": len(train_rows)},
            "validation": {"path": str(settings.validation) if settings.validation else None,
                           "sha256": file_sha256(settings.validation) if settings.validation else None,
                           "rows": len(eval_rows),
                           "lines": None if settings.validation else sorted(e.line for e in eval_rows)}}
    record = _common.write_record(staging, "rm", settings, data, metrics, contamination, points, db)
    _write_accuracy_curves(staging / "curves.csv", points, margins)
    return record


def _write_accuracy_curves(path: Path, points, evals: dict) -> None:
    """curves.csv with the columns every method writes and `accuracy` (validation points) after them."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RM_CURVE_COLUMNS)
        for p in points:
            accuracy = evals.get(p.step, {}).get("eval_accuracy") if p.split == "eval" else None
            writer.writerow([p.step, p.split, repr(p.loss), "" if p.perplexity is None else repr(p.perplexity),
                             "" if p.reward_margin is None else repr(p.reward_margin),
                             "" if accuracy is None else repr(accuracy)])
