"""What evaluation inside training adds to training time, measured in one run.

The toy SFT (the shipped toy_sft config, validation every 20 steps) trains three times through `train_sft`,
as `evalhub train sft` runs it, each in its own child process on one thread:
  - plain: validation loss only;
  - golden: plus the golden win rate on K items every 20 steps (--eval-golden, the reference judge, so the
    number is generation and judging bookkeeping, not a provider's latency);
  - golden+tasks: plus the toy's general lm-eval task (--eval-tasks, --eval-limit 40) at the same steps.
Wall time covers the Trainer's loop only (train_runtime), so loading the model counts for none of them; the
golden run's baseline answers (made once, at the start) are inside it. Goal (issue: evaluation inside
training): 20 items every 20 steps add at most 30% to the toy SFT's time.

    .venv/bin/python bench/bench_train_eval.py [--steps 80] [--items 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(mode: str, steps: int, items: int, output: Path) -> None:
    import torch

    torch.set_num_threads(1)
    from evalhub.toy import build_toy_world
    from trainers.config import toy_settings
    from trainers.sft import SFTSettings, train_sft

    world = build_toy_world(seed=0, quiet=True)
    manifest = json.loads((world / "manifest.json").read_text())
    extra = {}
    if mode != "plain":
        extra.update(eval_golden=REPO / "golden_sets" / "toy_zorvish.jsonl", eval_judge="reference", eval_items=items)
    if mode == "golden+tasks":
        extra.update(eval_tasks=[manifest["task_name"]], eval_tasks_path=world / manifest["tasks_path"],
                     eval_limit=40)
    settings = toy_settings(SFTSettings, "toy_sft", base=world / manifest["base"], data=world / manifest["sft"],
                            output=output, golden=[], max_steps=steps, eval_steps=20, **extra)
    train_sft(settings)
    record = json.loads((output / "training.json").read_text())
    print(json.dumps({"mode": mode, "train_runtime_s": record["metrics"]["train_runtime_s"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--child", default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.steps, args.items, Path(args.output))
        return
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("plain", "golden", "golden+tasks"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--steps", str(args.steps),
                                  "--items", str(args.items), "--output", str(Path(folder) / mode.replace("+", "-"))],
                                 capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                 check=True)
            times[mode] = json.loads(out.stdout.strip().splitlines()[-1])["train_runtime_s"]
    plain = times["plain"]
    print(json.dumps({"steps": args.steps, "items": args.items, "every": 20,
                      **{f"{mode}_s": round(t, 2) for mode, t in times.items()},
                      "golden_overhead": round(times["golden"] / plain - 1, 3),
                      "golden_tasks_overhead": round(times["golden+tasks"] / plain - 1, 3)}))


if __name__ == "__main__":
    main()
