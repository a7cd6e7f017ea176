"""Forgetting watched while training: lm-eval tasks scored on the model being trained at validation steps.

At every `every`-th validation step (and at step 0, the base before any update) lm-eval's HFLM wraps the model
in memory, adapter on, and scores each task on its primary metric with compare's forgetting settings (zero-shot,
seeded, `limit` items per task). A drop against step 0 is the forgetting `compare` would report afterwards; here
it shows when it happens. The datasets are loaded before training starts, so a task that cannot load fails in
seconds. A task that fails mid-training is recorded on that step, and training goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from evalhub.quiet import progress


@dataclass
class TaskEval(TrainerCallback):
    tasks: list[str]
    every: int
    limit: int | float | None = None
    tasks_path: Path | None = None
    seed: int = 0
    batch_size: int = 8
    records: list[dict] = field(default_factory=list)
    task_manager: Any = None
    leaves: dict = field(default_factory=dict)
    tokenizer: Any = None
    at_steps: bool = False  # RL: no validation steps, so evaluate at step 0 and every `every` training steps

    def __post_init__(self):
        from evalhub.forgetting import prepared_tasks

        self.task_manager, self.leaves = prepared_tasks(self.tasks, self.tasks_path)

    def on_train_begin(self, args, state, control, processing_class=None, model=None, **kwargs):
        self.tokenizer = processing_class
        if self.at_steps:
            self._evaluate_step(0, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.at_steps and state.global_step % self.every == 0:
            self._evaluate_step(state.global_step, model)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        step = state.global_step
        if metrics is None or not (step % self.every == 0 or not self.records):
            return
        self._evaluate_step(step, model)

    def _evaluate_step(self, step: int, model) -> None:
        from evalhub.forgetting import ForgettingSettings, evaluate_in_memory

        settings = ForgettingSettings(batch_size=self.batch_size, limit=self.limit, seed=self.seed)
        was_training = model.training
        model.eval()
        try:
            scores = evaluate_in_memory(model, self.tokenizer, self.tasks, self.task_manager, self.leaves, settings)
        except Exception as error:  # noqa: BLE001 - a task failure must not end training
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            progress(f"task evaluation at step {step} failed ({message}); training goes on")
            self.records.append({"step": step, "tasks_error": message})
            return
        finally:
            model.train(was_training)
        self.records.append({"step": step, **{f"acc_{task}": score for task, score in scores.items()}})

    def columns(self) -> list[str]:
        return sorted({f"acc_{leaf}" for names in self.leaves.values() for leaf in names})

    def summary(self) -> dict:
        return {"tasks": self.tasks, "limit": self.limit, "every": self.every, "steps": self.records}
