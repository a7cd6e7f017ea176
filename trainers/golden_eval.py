"""Evaluation inside training: the win rate against the base on golden items, at validation steps.

At the start the base answers a fixed, seeded sample of the golden set (the LoRA adapter disabled); at each
evaluation the model being trained answers the same items (adapter on), greedy and batched as `compare`'s hf
backend generates them (evalhub.generate.hf, same prompt building and chat template), and evalhub's judge
judges the pairs blind in both orders (judge_pairs: its cache, protocol and statistics, the win rate and its
CI as `compare` reports them). A judge that fails records the failure on that step; training goes on.

For `select_by: win_rate` the callback adds `eval_selection_rank` to the metrics the Trainer checks: a count
that grows exactly when a step's (win rate, CI lower bound, -validation loss) beats every earlier one, so
the Trainer's own best-checkpoint machinery (save_strategy="best", load_best_model_at_end) keeps that step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from evalhub.errors import UserError
from evalhub.quiet import progress

SELECTION_METRIC = "selection_rank"  # the Trainer reads it as eval_selection_rank


def default_judge() -> str:
    """openai:gpt-4.1 with OPENAI_API_KEY set (as `compare`), else the offline reference judge."""
    import os

    from evalhub.compare import DEFAULT_JUDGE

    return DEFAULT_JUDGE if os.environ.get("OPENAI_API_KEY") else "reference"


def sample_items(golden: Path, count: int, seed: int) -> list:
    """A fixed seeded sample of `count` golden items (all of them when the set is smaller), in file order."""
    from evalhub.golden import load_golden

    items = load_golden(golden)
    if count >= len(items):
        return items
    chosen = set(random.Random(seed).sample(range(len(items)), count))
    return [item for k, item in enumerate(items) if k in chosen]


@dataclass
class GoldenEval(TrainerCallback):
    """Win rate of the model being trained against its base, judged at every `every`-th step's validation."""

    items: list
    judge: str
    every: int
    golden_file: str = ""
    max_new_tokens: int = 64
    batch_size: int = 16
    seed: int = 0
    select: bool = False  # put eval_selection_rank into the Trainer's metrics
    max_cost: float | None = None  # USD for all of this run's judging (each step gets what is left)
    spent: float = 0.0
    budget_closed: str | None = None  # why no further step is judged (the budget), once that is so
    patience: int = 0  # with select: stop after this many scored golden evaluations without a better win rate
    watch: Any = None  # the run's OverfittingWatch: an early stop here is reported through it, as its own are
    since_best: int = 0
    at_steps: bool = False  # RL: no validation steps, so evaluate at step 0 and every `every` training steps
    records: list[dict] = field(default_factory=list)
    baseline: dict = field(default_factory=dict)  # given (--eval-baseline), or the base's, made at the start
    baseline_name: str | None = None
    best: tuple | None = None
    best_step: int | None = None
    rank: int = 0
    tokenizer: Any = None

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.tokenizer = processing_class
        if not self.baseline:
            with _adapter_off(model):
                self.baseline = self._answers(model)
        if self.at_steps:
            self._evaluate_step(0, model, None)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.at_steps and state.global_step % self.every == 0:
            self._evaluate_step(state.global_step, model, None)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        step = state.global_step
        if metrics is None:
            return
        if step % self.every == 0 or not self.records:
            self._evaluate_step(step, model, metrics.get("eval_loss"))
            self._maybe_stop(step, control)
        if self.select:
            # No best yet (only failed or unscored evaluations): nothing beats the Trainer's starting -inf.
            metrics[f"eval_{SELECTION_METRIC}"] = float(self.rank) if self.best_step is not None else float("-inf")

    def _evaluate_step(self, step: int, model, eval_loss) -> None:
        from evalhub.judge import JudgeOptions, judge_pairs

        left = None if self.max_cost is None else self.max_cost - self.spent
        if self.budget_closed is None and left is not None and left <= 0:
            self.budget_closed = f"the judging budget (--max-cost {self.max_cost}) is spent"
        if self.budget_closed is not None:
            self.records.append({"step": step, "eval_error": self.budget_closed})
            return
        tuned = self._answers(model)
        try:
            stats = judge_pairs(self.items, base=self.baseline, tuned=tuned, judge=self.judge,
                                options=JudgeOptions(seed=self.seed, progress=False, max_cost=left),
                                golden_file=self.golden_file).stats
        except Exception as error:  # noqa: BLE001 - a judge failure must not end training
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            progress(f"golden evaluation at step {step}: the judge failed ({message}); training goes on")
            self.records.append({"step": step, "eval_error": message})
            if left is not None:
                # What a failed step spent is not reported back: judging on could pass the run's budget.
                self.budget_closed = f"no judging after the failure at step {step} under --max-cost {self.max_cost}"
            return
        self.spent += stats.get("cost_usd") or 0.0
        lower, upper = stats["win_rate_ci"] if stats.get("win_rate_ci") else (None, None)
        record = {"step": step, "win_rate": stats["win_rate"], "win_rate_lower": lower, "win_rate_upper": upper,
                  "parse_failures": stats["parse_failures"], "wins": stats["wins"], "losses": stats["losses"],
                  "ties": stats["ties"], "scored": stats["scored"], "n": stats["n"],
                  "judge_calls": stats["judge_calls"], "cost_usd": stats["cost_usd"]}
        self.records.append(record)
        # Step 0 (the evaluation at the start) has no checkpoint to keep: it never competes.
        if step > 0 and stats["win_rate"] is not None:
            key = (stats["win_rate"], lower if lower is not None else -1.0,
                   -eval_loss if eval_loss is not None else float("-inf"))
            if self.best is None or key > self.best:
                self.best, self.best_step, self.rank = key, step, self.rank + 1
                self.since_best = 0
            else:
                self.since_best += 1

    def _maybe_stop(self, step: int, control) -> None:
        """Early stopping that follows the win rate, as the overfitting watch follows the validation loss."""
        if not (self.select and self.patience > 0 and self.best_step is not None and self.since_best >= self.patience):
            return
        control.should_training_stop = True
        if self.watch is not None and self.watch.reason is None:
            self.watch.stopped_at = step
            self.watch.reason = (f"the win rate has not beaten {self.best[0]:.3f} (step {self.best_step}) in "
                                 f"{self.patience} golden evaluations")

    def _answers(self, model) -> dict:
        """Greedy answers to the items, batched, as `compare`'s hf backend makes them; the model is put in
        eval mode and the tokenizer's padding side on the left for the duration, then both restored."""
        from evalhub.generate._prompts import encode_prompts
        from evalhub.generate.hf import _generate_batches
        from evalhub.records import DecodingSettings, Generation

        settings = DecodingSettings(max_new_tokens=self.max_new_tokens, seed=self.seed)
        tokenizer = self.tokenizer
        context = _context_of(model)
        prompts = encode_prompts(tokenizer, self.items, settings, context)
        answers: dict = dict(prompts.too_long)
        was_training, side, use_cache = model.training, tokenizer.padding_side, model.config.use_cache
        model.eval()
        tokenizer.padding_side = "left"
        model.config.use_cache = True
        try:
            prompt_of = {item.id: item.prompt for item in self.items}
            for texts in _generate_batches(model, tokenizer, prompts.ids, settings, self.batch_size, "golden"):
                answers.update({i: Generation(item_id=i, prompt=prompt_of[i], output=t) for i, t in texts.items()})
        finally:
            tokenizer.padding_side = side
            model.config.use_cache = use_cache
            model.train(was_training)
        return answers

    def summary(self) -> dict:
        return {"judge": self.judge, "baseline": self.baseline_name or "base", "golden": self.golden_file, "items": [i.id for i in self.items],
                "every": self.every, "max_cost": self.max_cost, "cost_usd": self.spent, "steps": self.records}


def baseline_answers(source: str, items: list, max_new_tokens: int, seed: int, db=None) -> dict:
    """The answers of `source` (an adapter or model folder, or a tag in the store) to the items, made once
    before training through compare's hf backend with the same decoding (greedy, `max_new_tokens`)."""
    from evalhub.generate import generate_for_models
    from evalhub.records import DecodingSettings
    from evalhub.tags import resolve_model

    path, adapter_base = resolve_model(source, db)
    if not Path(path).exists():
        raise UserError(f"--eval-baseline {source}: no such folder and no such tag; pass an adapter or model "
                        "folder, or a tag set with `evalhub tag set`")
    settings = DecodingSettings(max_new_tokens=max_new_tokens, seed=seed)
    return generate_for_models({"baseline": path}, items, settings, backend="hf", adapter_base=adapter_base)["baseline"]


def _context_of(model) -> int:
    config = model.config
    return int(getattr(config, "max_position_embeddings", None) or 2048)


class _adapter_off:
    """peft's disable_adapter() for a LoRA model; nothing for a full model (still the base at the start)."""

    def __init__(self, model):
        self.inner = model.disable_adapter() if hasattr(model, "disable_adapter") and hasattr(model, "peft_config") \
            else None

    def __enter__(self):
        if self.inner is not None:
            self.inner.__enter__()

    def __exit__(self, *exc):
        if self.inner is not None:
            return self.inner.__exit__(*exc)
        return False
