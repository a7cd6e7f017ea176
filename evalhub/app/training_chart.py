"""What the run page's Training tab plots from the adapter's training.json, beside the loss curve: the golden
win rate per validation step with its CI, each task's accuracy per step (`acc_<task>` keys), the steps whose
evaluation failed, and the checkpoint the trainer kept (`selection`). Pure data shaping: run_page.py draws it.

The numbers are the trainer's own (trainers/golden_eval.py, trainers/task_eval.py): the win rate and its 95%
interval as evalhub's judge computed them at that step (evalhub.stats.pairwise: percentile bootstrap over
items), each task's primary metric as lm-eval scored it; nothing is recomputed here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalCurves:
    win_rate: list[dict]   # step, win_rate, win_rate_lower, win_rate_upper (bounds None when the step had no CI)
    accuracy: list[dict]   # step, task, accuracy: one row per task and step
    failures: list[str]    # "step N: why", one per evaluation that failed
    kept: dict | None      # selection: by, step, value; None when the record names no kept step

    @property
    def empty(self) -> bool:
        return not (self.win_rate or self.accuracy or self.failures or self.kept)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _steps(record: dict, entry: str) -> list[dict]:
    section = record.get(entry)
    steps = section.get("steps") if isinstance(section, dict) else None
    return [s for s in steps if isinstance(s, dict) and _number(s.get("step")) is not None] if isinstance(steps, list) else []


def eval_curves(record: dict | None) -> EvalCurves:
    """The series of a training record. Accuracies are read from the golden evaluation's steps and from the
    task evaluation's (the trainer copies them onto the golden steps when both ran); each (task, step) once."""
    record = record if isinstance(record, dict) else {}
    golden, tasks = _steps(record, "golden_eval"), _steps(record, "task_eval")
    win_rate = [{"step": int(s["step"]), "win_rate": _number(s.get("win_rate")),
                 "win_rate_lower": _number(s.get("win_rate_lower")), "win_rate_upper": _number(s.get("win_rate_upper"))}
                for s in golden if _number(s.get("win_rate")) is not None]
    accuracy: dict[tuple[str, int], float] = {}
    for s in golden + tasks:
        for key, value in s.items():
            if key.startswith("acc_") and _number(value) is not None:
                accuracy.setdefault((key.removeprefix("acc_"), int(s["step"])), _number(value))
    failures = [f"step {int(s['step'])}: judge failed ({s['eval_error']})" for s in golden if "eval_error" in s]
    failures += [f"step {int(s['step'])}: tasks failed ({s['tasks_error']})" for s in tasks if "tasks_error" in s]
    selection = record.get("selection")
    kept = None
    if isinstance(selection, dict) and _number(selection.get("step")) is not None:
        kept = {"by": selection.get("by") or "loss", "step": int(selection["step"]),
                "value": _number(selection.get("value"))}
    return EvalCurves(win_rate=sorted(win_rate, key=lambda r: r["step"]),
                      accuracy=[{"step": step, "task": task, "accuracy": value}
                                for (task, step), value in sorted(accuracy.items())],
                      failures=failures, kept=kept)


def kept_caption(kept: dict | None) -> str | None:
    """'kept: step 60 (by win_rate, value 0.750)': which checkpoint's weights the adapter holds, and why."""
    if kept is None:
        return None
    value = "" if kept["value"] is None else f", value {kept['value']:.3f}"
    return f"kept: step {kept['step']} (by {kept['by']}{value})"
