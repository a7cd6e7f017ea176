"""How long vLLM's CPU engine takes to start for the toy base with the demo adapter, under the vLLM switches
the test suite sets (tests/conftest.py), measured in one run on this machine.

Each configuration runs in a fresh Python process that imports evalhub and vLLM (timed apart), then starts
the engine twice in a row (the second start shows what a process that already started one pays), answering
8 prompts greedily after each start:

  default                  evalhub's defaults: engine core and worker in spawned processes, 30% of RAM as KV cache
  kv 1 GiB                 VLLM_CPU_KVCACHE_SPACE=1
  in-process               VLLM_ENABLE_V1_MULTIPROCESSING=0
  in-process, kv 1 GiB     both
  suite (+ no compile)     both, and VLLM_CPU_CI_ENV=1: eager model, no warm-up (vLLM's own CPU CI setting)

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_engine_start.py [--no-adapter]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CONFIGS = {
    "default": {},
    "kv 1 GiB": {"VLLM_CPU_KVCACHE_SPACE": "1"},
    "in-process": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    "in-process, kv 1 GiB": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"},
    "suite (+ no compile)": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
                             "VLLM_CPU_CI_ENV": "1"},
}
SUITE_VARIABLES = ("VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_CI_ENV")

# Run in the child: the spawned engine-core process re-imports the main module, hence the guard.
CHILD = """
import json, sys, time
def main():
    started = time.monotonic()
    from evalhub.models import LoadOptions
    from evalhub.models.vllm_engine import engine_args, shut_down, start_engine
    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest
    base, adapters = sys.argv[1], sys.argv[2:]
    timings = {"import_s": time.monotonic() - started, "start_s": []}
    for _ in range(2):
        started = time.monotonic()
        llm = start_engine(engine_args(base, LoadOptions(), adapters))
        timings["start_s"].append(time.monotonic() - started)
        request = LoRARequest("tuned", 1, adapters[0]) if adapters else None
        llm.generate(["hello there"] * 8, SamplingParams(max_tokens=16, temperature=0), lora_request=request,
                     use_tqdm=False)
        shut_down(llm)
        del llm
    print("TIMINGS " + json.dumps(timings), flush=True)
if __name__ == "__main__":
    main()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-adapter", action="store_true", help="Start the base alone (compiled without LoRA).")
    args = parser.parse_args()

    from evalhub.demo import demo_adapter
    from evalhub.toy import build_toy_world

    toy = build_toy_world(seed=0, quiet=True)
    adapters = [] if args.no_adapter else [str(demo_adapter(toy, 0))]
    clean = {k: v for k, v in os.environ.items() if k not in SUITE_VARIABLES}
    results = {}
    for name, variables in CONFIGS.items():
        done = subprocess.run([sys.executable, "-c", CHILD, str(toy / "base"), *adapters], env={**clean, **variables},
                              capture_output=True, text=True)
        line = next((l for l in done.stdout.splitlines() if l.startswith("TIMINGS ")), None)
        if line is None:
            sys.exit(f"{name}: the engine did not start:\n{done.stderr[-2000:]}")
        results[name] = json.loads(line.removeprefix("TIMINGS "))
        first, second = results[name]["start_s"]
        print(f"{name:24s} import {results[name]['import_s']:5.1f} s   first start {first:5.1f} s   "
              f"second start {second:5.1f} s", flush=True)
    default = results["default"]["start_s"][0]
    for name, timing in results.items():
        print(f"{name:24s} first start / default: {timing['start_s'][0] / default:.2f}")


if __name__ == "__main__":
    main()
