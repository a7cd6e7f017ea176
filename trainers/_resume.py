"""Resuming an interrupted SFT or DPO run (`--resume-from-checkpoint`) with its curves and evaluations.

A run trains in `.OUTPUT.training/` beside its output. At each validation step (every `eval_steps` steps when
there is no validation split) the Trainer writes a resumable checkpoint there: weights, optimizer, scheduler,
RNG states and its log history (the loss curves). Beside them, `evalhub_state.json` holds what evalhub's own
callbacks have measured so far (trainers/_resume_state.py): the golden evaluation's records, baseline answers
and spent budget, the tasks' accuracies, and the overfitting watch's points. Only the newest and the best
checkpoint are kept.

A finished run removes the folder. An interrupted one keeps it when it holds a checkpoint; the rerun with
`--resume-from-checkpoint` and the same settings goes on from the newest one, as transformers'
`Trainer.train(resume_from_checkpoint=...)` does, and writes the curves of the whole run. A rerun without the
flag is refused rather than silently discarding the steps already paid for (`--overwrite` starts over).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from evalhub.errors import UserError

CHECKPOINTS = ".checkpoints"  # the Trainer's output_dir inside the staging folder
SETTINGS_FILE = "settings.json"  # the settings the run started with: a resume must use the same
STATE_FILE = "evalhub_state.json"  # evalhub's callbacks' state, inside each checkpoint folder
# Settings that may differ between the interrupted run and its resumption.
FREE_TO_CHANGE = ("resume_from_checkpoint", "overwrite")


def staging_folder(output: Path) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.training"


def last_checkpoint(staging: Path) -> Path | None:
    """The newest complete checkpoint (the Trainer's state and evalhub's written), or None."""
    found = []
    for folder in (Path(staging) / CHECKPOINTS).glob("checkpoint-*"):
        step = folder.name.removeprefix("checkpoint-")
        if step.isdigit() and (folder / "trainer_state.json").is_file() and (folder / STATE_FILE).is_file():
            found.append((int(step), folder))
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("checkpoint-"))


def check_resume(settings) -> None:
    """Before anything loads: `--resume-from-checkpoint` needs an interrupted run of this output with the
    same settings, and a fresh run must not silently discard one."""
    staging = staging_folder(settings.output)
    checkpoint = last_checkpoint(staging)
    if not settings.resume_from_checkpoint:
        if checkpoint is not None and not settings.overwrite:
            raise UserError(f"an interrupted run of {settings.output} stopped after step {checkpoint_step(checkpoint)} "
                            f"(kept in {staging}); pass --resume-from-checkpoint to continue it, or --overwrite to "
                            "start over")
        return
    if checkpoint is None:
        raise UserError(f"nothing to resume for {settings.output}: no interrupted run with a checkpoint in {staging}; "
                        "drop --resume-from-checkpoint")
    from trainers._common import settings_dict

    started = json.loads((staging / SETTINGS_FILE).read_text(encoding="utf-8"))
    now = settings_dict(settings)
    changed = sorted(k for k in set(started) | set(now) if k not in FREE_TO_CHANGE and started.get(k) != now.get(k))
    if changed:
        detail = ", ".join(f"{k}: {started.get(k)!r} then, {now.get(k)!r} now" for k in changed[:3])
        raise UserError(f"--resume-from-checkpoint continues the run as it started, and these settings changed "
                        f"({detail}); rerun with the first run's settings, or pass --overwrite to start over")


def open_staging(settings) -> Path:
    """The staging folder of a resumable run: the interrupted run's (resume), or a fresh one with the settings
    recorded."""
    from trainers._common import settings_dict

    staging = staging_folder(settings.output)
    if settings.resume_from_checkpoint:
        return staging
    shutil.rmtree(staging, ignore_errors=True)  # an earlier attempt with no checkpoint, or --overwrite
    staging.mkdir(parents=True)
    (staging / SETTINGS_FILE).write_text(json.dumps(settings_dict(settings), indent=2) + "\n", encoding="utf-8")
    return staging
