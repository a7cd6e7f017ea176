"""The resumable checkpoints' evalhub part (trainers/_resume.py): what evalhub's own callbacks measured so far,
written into each checkpoint the Trainer saves and restored when a run resumes from it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from transformers import TrainerCallback

from trainers._resume import STATE_FILE, checkpoint_step, last_checkpoint


class SaveEvaluationState(TrainerCallback):
    """Writes evalhub's callbacks' state into every checkpoint the Trainer saves, and restores it on resume."""

    def __init__(self, watch, golden=None, tasks=None):
        self.watch, self.golden, self.tasks = watch, golden, tasks

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            state_now = {"watch": _watch_state(self.watch),
                         "golden": _golden_state(self.golden) if self.golden is not None else None,
                         "tasks": {"records": self.tasks.records} if self.tasks is not None else None}
            temporary = folder / f"{STATE_FILE}.tmp"
            temporary.write_text(json.dumps(state_now), encoding="utf-8")
            temporary.replace(folder / STATE_FILE)  # whole or absent: a checkpoint without it is not resumed

    def restore(self, checkpoint: Path) -> None:
        saved = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
        watch = saved["watch"]
        self.watch.evals = [tuple(p) for p in watch["evals"]]
        self.watch.train = [tuple(p) for p in watch["train"]]
        self.watch.stopped_at, self.watch.reason = watch["stopped_at"], watch["reason"]
        self.watch.resumed_from = checkpoint_step(checkpoint)
        if self.golden is not None and saved.get("golden"):
            _restore_golden(self.golden, saved["golden"])
        if self.tasks is not None and saved.get("tasks"):
            self.tasks.records = saved["tasks"]["records"]


def _watch_state(watch) -> dict:
    return {"evals": watch.evals, "train": watch.train, "stopped_at": watch.stopped_at, "reason": watch.reason}


def _golden_state(golden) -> dict:
    return {"records": golden.records, "spent": golden.spent, "budget_closed": golden.budget_closed,
            "since_best": golden.since_best, "best": list(golden.best) if golden.best is not None else None,
            "best_step": golden.best_step, "rank": golden.rank,
            "baseline": {key: asdict(answer) for key, answer in golden.baseline.items()}}


def _restore_golden(golden, saved: dict) -> None:
    from evalhub.records import Generation

    golden.records, golden.spent, golden.budget_closed = saved["records"], saved["spent"], saved["budget_closed"]
    golden.since_best, golden.best_step, golden.rank = saved["since_best"], saved["best_step"], saved["rank"]
    golden.best = tuple(saved["best"]) if saved["best"] is not None else None
    # The baseline's answers as first made: the rest of the run is judged against the same ones.
    golden.baseline = {key: Generation(**answer) for key, answer in saved["baseline"].items()}


def resume_point(settings, staging: Path, saver: SaveEvaluationState) -> str | None:
    """For `Trainer.train(resume_from_checkpoint=...)`: the newest checkpoint with evalhub's callbacks restored
    to it, or None for a fresh run."""
    if not settings.resume_from_checkpoint:
        return None
    from evalhub.quiet import progress

    checkpoint = last_checkpoint(staging)
    saver.restore(checkpoint)
    progress(f"resuming from step {checkpoint_step(checkpoint)} ({checkpoint})")
    return str(checkpoint)
