"""Quiet training: one progress bar for a run's optimizer steps on the terminal.

While `evalhub train` runs, evalhub.quiet points the process's output at the run's log file, so the Trainer's
metric dicts, its own nested bars, datasets' map bars, weight loading bars and library warnings land there.
This bar is drawn on the terminal saved before the redirection.
"""

from __future__ import annotations

from transformers import TrainerCallback

from evalhub.quiet import terminal


class StepProgress(TrainerCallback):
    """A tqdm bar over the run's optimizer steps with the latest training and validation loss beside it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.latest: dict[str, str] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.label, unit="step",
                        file=terminal(), mininterval=1.0, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        shown = {"loss": "loss", "eval_loss": "val", "reward": "reward", "eval_accuracy": "acc"}
        for key, name in shown.items():
            if isinstance((logs or {}).get(key), (int, float)):
                self.latest[name] = f"{logs[key]:.3g}"
        if self.bar is not None and self.latest:
            self.bar.set_postfix(self.latest, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            self.bar.close()
            self.bar = None

