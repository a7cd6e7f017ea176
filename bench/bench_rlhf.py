"""Reward-model training and GRPO beside SFT: throughput and peak memory on the toy world, measured in one run.

Each method trains in its own child process (so peak memory is that method's alone) through the functions users
run, with the shipped toy configs (`toy_sft`, `toy_rm`, `toy_grpo`) and no validation:
  - sft:  LoRA SFT on the toy SFT data;
  - rm:   a reward model (LoRA + score head) on the toy preference pairs; each step scores chosen and rejected;
  - grpo: GRPO from the demo's SFT adapter with the exact-match reward; each step samples 8 answers for each
          of 2 prompts (transformers generation on a CPU) and trains on them.
tokens/s = the tokens the trainer consumed as TRL counts them (GRPO: prompts and sampled answers) / its
train_runtime; peak RSS of the child and its growth over the RSS after the libraries were imported.

    .venv/bin/python bench/bench_rlhf.py [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

METHODS = ("sft", "rm", "grpo")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _worker(method: str, output: Path, steps: int) -> None:
    import peft  # noqa: F401  (imports count as the baseline, not as training)
    import torch  # noqa: F401
    import trl  # noqa: F401

    from evalhub.demo import demo_adapter
    from evalhub.toy import build_toy_world
    from trainers.config import toy_settings

    toy = build_toy_world(seed=0, quiet=True)
    common = dict(output=output, max_steps=steps, validation_fraction=0, logging_steps=steps, golden=[])
    if method == "grpo":
        adapter = demo_adapter(toy, 0)  # trained (or reused) before the baseline is taken
    baseline = _rss_mib()
    if method == "sft":
        from trainers.sft import SFTSettings, train_sft

        out = train_sft(toy_settings(SFTSettings, "toy_sft", **common))
    elif method == "rm":
        from trainers.reward import RMSettings, train_rm

        out = train_rm(toy_settings(RMSettings, "toy_rm", **common))
    else:
        from trainers.rl import GRPOSettings, train_grpo

        out = train_grpo(toy_settings(GRPOSettings, "toy_grpo", adapter=adapter, **common))
    metrics = json.loads((out / "training.json").read_text())["metrics"]
    print(json.dumps({"method": method, "tokens": metrics["train_tokens"], "seconds": metrics["train_runtime_s"],
                      "peak_mib": _rss_mib(), "baseline_mib": baseline}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: see tests/train_helpers.py)")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        _worker(args.worker[0], Path(args.worker[1]), args.steps)
        return

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            print(f"training {method} ...", file=sys.stderr)
            child = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--threads", str(args.threads),
                                    "--worker", method, str(Path(tmp) / method)],
                                   capture_output=True, text=True, env=env, check=False)
            if child.returncode != 0:
                sys.exit(f"{method} failed:\n{child.stderr[-3000:]}")
            results[method] = json.loads(child.stdout.strip().splitlines()[-1])

    sft = results["sft"]
    print(f"{args.steps} steps, {args.threads} thread(s)")
    print(f"{'method':6} {'s/step':>7} {'tokens/s':>9} {'vs SFT':>7} {'peak RSS':>9} {'growth':>7} {'vs SFT':>7}   (MiB)")
    for method, r in results.items():
        speed, sft_speed = r["tokens"] / r["seconds"], sft["tokens"] / sft["seconds"]
        growth, sft_growth = r["peak_mib"] - r["baseline_mib"], sft["peak_mib"] - sft["baseline_mib"]
        print(f"{method:6} {r['seconds'] / args.steps:7.3f} {speed:9.0f} {speed / sft_speed:6.2f}x {r['peak_mib']:9.0f} "
              f"{growth:7.0f} {growth / sft_growth:6.2f}x")


if __name__ == "__main__":
    main()
