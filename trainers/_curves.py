"""The overfitting watch, and the loss curves it reads.

Overfitting shows as validation loss rising while training loss keeps falling: the model memorises its
training rows at the cost of everything else. The watch stops the run after `patience` consecutive rises
of validation loss during which training loss fell; the Trainer (load_best_model_at_end) then restores the
checkpoint with the lowest validation loss, which is the one saved.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

CURVE_COLUMNS = ("step", "split", "loss", "perplexity", "reward_margin")
# With a golden evaluation inside training (trainers/golden_eval.py), on the eval rows where it ran.
GOLDEN_COLUMNS = ("win_rate", "win_rate_lower", "win_rate_upper", "parse_failures")


@dataclass
class CurvePoint:
    """One logged point: training loss (mean since the previous log) or a validation evaluation."""

    step: int
    split: str  # 'train' or 'eval'
    loss: float
    perplexity: float | None = None  # eval only, and only where the loss is a token NLL (SFT)
    reward_margin: float | None = None  # eval only, DPO: chosen-minus-rejected implicit reward
    golden: dict | None = None  # eval only: the golden evaluation's GOLDEN_COLUMNS at this step, if it ran


@dataclass
class OverfittingWatch(TrainerCallback):
    """Stop when validation loss rose `patience` evaluations in a row while training loss fell."""

    patience: int = 3
    evals: list[tuple[int, float]] = field(default_factory=list)
    train: list[tuple[int, float]] = field(default_factory=list)
    stopped_at: int | None = None
    reason: str | None = None
    resumed_from: int | None = None  # the checkpoint's step when the run was resumed (trainers/_resume.py)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_loss" not in metrics:
            return
        self.evals.append((state.global_step, float(metrics["eval_loss"])))
        if self.patience <= 0 or len(self.evals) <= self.patience:
            return
        window = self.evals[-(self.patience + 1):]
        rising = all(later[1] > earlier[1] for earlier, later in zip(window, window[1:]))
        before, now = self._train_loss_at(window[0][0]), self._train_loss_at(window[-1][0])
        if rising and before is not None and now is not None and now < before:
            control.should_training_stop = True
            self.stopped_at = state.global_step
            self.reason = (f"validation loss rose {self.patience} evaluations in a row "
                           f"({window[0][1]:.4f} -> {window[-1][1]:.4f}, steps {window[0][0]}-{window[-1][0]}) "
                           f"while training loss fell ({before:.4f} -> {now:.4f})")

    def _train_loss_at(self, step: int) -> float | None:
        """The latest training loss logged at or before `step` (the first one for the step-0 evaluation)."""
        logged = [loss for s, loss in self.train if s <= step]
        if logged:
            return logged[-1]
        return self.train[0][1] if self.train else None


def curve_points(log_history: list[dict], loss_is_nll: bool) -> list[CurvePoint]:
    """Training and validation points from the Trainer's log history, one per (step, split)."""
    points: dict[tuple[int, str], CurvePoint] = {}
    for entry in log_history:
        step = int(entry.get("step", 0))
        if "loss" in entry:
            points[(step, "train")] = CurvePoint(step, "train", float(entry["loss"]))
        if "eval_loss" in entry:
            loss = float(entry["eval_loss"])
            margin = entry.get("eval_rewards/margins")
            points[(step, "eval")] = CurvePoint(
                step, "eval", loss, perplexity=_perplexity(loss) if loss_is_nll else None,
                reward_margin=float(margin) if margin is not None else None)
    return sorted(points.values(), key=lambda p: (p.step, p.split))


def write_curves(points: list[CurvePoint], path: Path) -> None:
    """CSV beside the adapter: step, split, loss, perplexity, reward_margin (empty where it does not apply);
    with a golden evaluation, also win_rate, win_rate_lower, win_rate_upper and parse_failures, and with tasks
    scored during training an acc_<task> column each (empty where they did not run or failed)."""
    measured = {key for p in points for key in (p.golden or {})}
    extra = [c for c in GOLDEN_COLUMNS if c in measured] + sorted(k for k in measured if k.startswith("acc_"))

    def cell(value) -> str:
        return "" if value is None else repr(value)

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CURVE_COLUMNS + tuple(extra))
        for p in points:
            row = [p.step, p.split, repr(p.loss), cell(p.perplexity), cell(p.reward_margin)]
            row += [cell((p.golden or {}).get(column)) for column in extra]
            writer.writerow(row)


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf
