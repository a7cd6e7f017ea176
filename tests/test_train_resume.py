"""A training run interrupted mid-way resumes with `--resume-from-checkpoint` to the run it would have been: the
same adapter, the same curves and the same golden evaluations as an uninterrupted run, on the toy world.

The interrupt is a KeyboardInterrupt raised by a TrainerCallback at a chosen step, which is what Ctrl+C raises
inside the training loop; the toy trains too fast for a signal sent from outside to land at a known step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from evalhub.errors import Interrupted, UserError
from tests.train_helpers import one_torch_thread  # noqa: F401 - a fixture
from trainers._resume import staging_folder
from trainers.config import toy_settings
from trainers.dpo import DPOSettings, train_dpo
from trainers.sft import SFTSettings, train_sft

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "golden_sets" / "toy_zorvish.jsonl"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class InterruptAt(TrainerCallback):
    """Ctrl+C at the end of optimizer step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def _train_cli(*flags: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalhub", "train", "sft", "--config", "toy_sft", *flags],
                          capture_output=True, text=True, cwd=cwd, env=ENV, timeout=600)


def _record(output: Path) -> dict:
    return json.loads((output / "training.json").read_text())


def test_an_interrupted_sft_run_resumes_to_the_uninterrupted_run(tmp_path):
    """40 steps, validation every 10 and the golden evaluation every 20, the checkpoint chosen by win rate:
    interrupted at step 25 (its newest checkpoint is step 20), refused without the flag or with another
    setting, then resumed from the command line."""
    flags = {"max_steps": 40, "eval_golden": GOLDEN, "eval_judge": "reference", "eval_items": 10,
             "eval_every": 20, "select_by": "win_rate"}
    whole = train_sft(toy_settings(SFTSettings, output=tmp_path / "whole", **flags))

    output = tmp_path / "resumed"
    with pytest.raises(Interrupted, match="kept at step 20 .*--resume-from-checkpoint"):
        train_sft(toy_settings(SFTSettings, output=output, **flags), callbacks=(InterruptAt(25),))
    assert not output.exists() and (staging_folder(output) / ".checkpoints" / "checkpoint-20").is_dir()

    cli = ["--output", str(output), "--max-steps", "40", "--eval-golden", str(GOLDEN), "--eval-judge", "reference",
           "--eval-items", "10", "--eval-every", "20", "--select-by", "win_rate"]
    fresh = _train_cli(*cli, cwd=tmp_path)
    assert fresh.returncode == 2 and "stopped after step 20" in fresh.stderr, fresh.stderr[-2000:]
    assert "--resume-from-checkpoint" in fresh.stderr and "Traceback" not in fresh.stderr
    changed = _train_cli(*cli, "--eval-items", "12", "--resume-from-checkpoint", cwd=tmp_path)
    assert changed.returncode == 2 and "eval_items: 10 then, 12 now" in changed.stderr, changed.stderr[-2000:]

    resumed = _train_cli(*cli, "--resume-from-checkpoint", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step 20" in resumed.stderr and "(resumed from step 20)" in resumed.stderr
    assert not staging_folder(output).exists()

    before, after = _record(whole), _record(output)
    assert after["metrics"]["resumed_from_step"] == 20
    # The same weights and the whole run's curves: the losses before step 20 come from the checkpoint's history.
    assert after["adapter_sha256"] == before["adapter_sha256"]
    assert (output / "curves.csv").read_text() == (whole / "curves.csv").read_text()
    assert [s["step"] for s in after["golden_eval"]["steps"]] == [0, 20, 40]
    assert after["golden_eval"]["steps"] == before["golden_eval"]["steps"]
    assert after["selection"] == before["selection"] and after["selection"]["by"] == "win_rate"
    assert sorted(p.name for p in output.iterdir()) == sorted(p.name for p in whole.iterdir())


def test_an_interrupted_dpo_run_resumes_to_the_same_adapter(tmp_path):
    flags = {"max_steps": 20, "eval_steps": 5}
    whole = train_dpo(toy_settings(DPOSettings, "toy_dpo", output=tmp_path / "whole", **flags))
    output = tmp_path / "resumed"
    with pytest.raises(Interrupted, match="kept at step 10"):
        train_dpo(toy_settings(DPOSettings, "toy_dpo", output=output, **flags), callbacks=(InterruptAt(12),))
    train_dpo(toy_settings(DPOSettings, "toy_dpo", output=output, resume_from_checkpoint=True, **flags))
    assert _record(output)["adapter_sha256"] == _record(whole)["adapter_sha256"]
    assert (output / "curves.csv").read_text() == (whole / "curves.csv").read_text()


def test_an_interrupt_before_the_first_checkpoint_leaves_nothing(tmp_path):
    output = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        train_sft(toy_settings(SFTSettings, output=output, max_steps=20), callbacks=(InterruptAt(5),))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_resume_with_nothing_to_resume_is_refused_before_anything_loads(tmp_path):
    result = _train_cli("--output", str(tmp_path / "never"), "--resume-from-checkpoint", cwd=tmp_path)
    assert result.returncode == 2 and "nothing to resume" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "never").exists()


def test_methods_without_resumable_checkpoints_refuse_the_flag(tmp_path):
    from trainers.reward import RMSettings, train_rm
    from trainers.rl import GRPOSettings, train_grpo

    with pytest.raises(UserError, match="is for `evalhub train sft|dpo`"):
        train_rm(toy_settings(RMSettings, "toy_rm", output=tmp_path / "rm", resume_from_checkpoint=True))
    with pytest.raises(UserError, match="is for `evalhub train sft|dpo`"):
        train_grpo(toy_settings(GRPOSettings, "toy_grpo", output=tmp_path / "rl", golden=[],
                                resume_from_checkpoint=True))
    assert not any(tmp_path.iterdir())


def test_a_killed_cli_run_resumes_and_writes_the_whole_runs_curves(tmp_path):
    """SIGKILL, which no handler sees, once a checkpoint is on disk: the rerun with the flag finishes the run."""
    import signal
    import time

    output = tmp_path / "killed"
    flags = ["--output", str(output), "--max-steps", "60", "--eval-steps", "10"]
    proc = subprocess.Popen([sys.executable, "-m", "evalhub", "train", "sft", "--config", "toy_sft", *flags],
                            cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = staging_folder(output) / ".checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not list(checkpoints.glob("*/evalhub_state.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not output.exists()

    resumed = _train_cli(*flags, "--resume-from-checkpoint", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = _record(output)
    assert record["metrics"]["steps"] == 60 and record["metrics"]["resumed_from_step"] >= 10
    rows = (output / "curves.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows if ",eval," in r] == list(range(0, 61, 10))  # none lost, none twice
    assert [int(r.split(",")[0]) for r in rows if ",train," in r] == list(range(5, 61, 5))
