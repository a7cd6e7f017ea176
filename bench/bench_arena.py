"""Arena speed, as ratios measured in one run: generation of 4 adapters of one base in one vLLM engine against
four compares' engines, and judging time against pairs x items x 2 calls at the judge's concurrency.

    .venv/bin/python bench/bench_arena.py            # prints the table and rewrites its section of RESULTS.md

Generation: the four toy adapters of the tests (trained 30, 45, 60 and 80 steps, cached beside the toy world)
x 100 golden items (the toy golden set), greedy, default settings, vLLM:
  - separately, as `compare BASE ADAPTER` does each today: one engine start per adapter, the base and the
    adapter answering the items, the engine released (4 engine starts, 8 passes);
  - as an arena: `generate_for_models` on the four adapters: one engine (on CUDA every call batches all four
    LoRAs; the CPU build, which cannot mix models in a batch, queues them one after another).
Both include engine starts: that is what a user waits for. Judging: the arena's 6 pairs x 100 items x 2 orders
= 1200 calls against a loopback OpenAI-compatible judge answering each call after 100 ms (tests/fake_openai.py,
in a child process), each pair judged by `judge_pairs` as the arena does, at the default concurrency; against
one pair alone, and against the ideal pairs x items x 2 x 100 ms / concurrency.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "RESULTS.md"
SECTION = "## Arena"
STEPS = (30, 45, 60, 80)
GOAL = 2.5
DELAY = 0.1


def _adapters(world: Path, manifest: dict) -> list[str]:
    from tests.conftest import _train_toy_adapter

    folders = []
    for steps in STEPS:
        folder = world.parent / f"{world.name}-adapters" / f"sft-{steps}-seed0"
        if not (folder / "adapter_config.json").exists():
            _train_toy_adapter(world, manifest, folder, steps)
        folders.append(str(folder))
    return folders


def _serve(delay: float, connection) -> None:
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI(lambda body: json.dumps({"verdict": "A", "reason": "first is fine"}), delay=delay) as server:
        connection.send(server.base_url)
        connection.recv()


def _judge(pairs, items, answers, url: str, cache: Path) -> tuple[float, int]:
    from evalhub.judge import JudgeOptions, judge_pairs

    options = JudgeOptions(base_url=url, cache_path=str(cache), progress=False)
    start, calls = time.perf_counter(), 0
    for a, b in pairs:
        calls += judge_pairs(items, answers[b], answers[a], "openai:bench-judge", options).stats["judge_calls"]
    return time.perf_counter() - start, calls


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from evalhub.generate import generate_answers, generate_for_models
    from evalhub.golden import load_golden
    from evalhub.judge import JudgeOptions
    from evalhub.toy import build_toy_world

    world = build_toy_world(seed=0, quiet=True)
    manifest = json.loads((world / "manifest.json").read_text())
    adapters = _adapters(world, manifest)
    items = load_golden(world / manifest["golden"])[:100]
    base = str(world / manifest["base"])
    load = os.getloadavg()[0]

    start = time.perf_counter()
    for adapter in adapters:
        generate_answers(base, adapter, items, backend="vllm")
    separate = time.perf_counter() - start
    start = time.perf_counter()
    answers = generate_for_models({f"m{k}": a for k, a in enumerate(adapters)}, items, backend="vllm")
    arena = time.perf_counter() - start

    concurrency = JudgeOptions().concurrency
    pairs = [(a, b) for k, a in enumerate(answers) for b in list(answers)[k + 1:]]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(DELAY, child), daemon=True)
    server.start()
    url = parent.recv()
    try:
        with tempfile.TemporaryDirectory() as folder:
            _judge(pairs[:1], items[:4], answers, url, Path(folder) / "warm.jsonl")
            one, one_calls = _judge(pairs[:1], items, answers, url, Path(folder) / "one.jsonl")
            every, calls = _judge(pairs, items, answers, url, Path(folder) / "all.jsonl")
    finally:
        parent.send("stop")
        server.join(timeout=10)
    ideal = calls * DELAY / concurrency
    lines = [
        SECTION, "",
        f"`bench/bench_arena.py`: {len(adapters)} LoRA adapters of the toy base (trained {', '.join(map(str, STEPS))} "
        f"steps) x {len(items)} golden items, greedy, vLLM (CPU build), engine starts included; then the arena's "
        f"{len(pairs)} pairs judged in both orders by a loopback judge answering in {DELAY * 1000:.0f} ms, default "
        f"concurrency {concurrency}. Load average at the start: {load:.1f}.", "",
        "| measure | value |", "|---|---|",
        f"| generation, 4 compares as today (4 engine starts, base + adapter each) | {separate:.1f} s |",
        f"| generation, arena (1 engine, 4 LoRAs) | {arena:.1f} s |",
        f"| ratio | {separate / arena:.2f}x (goal {GOAL}x) |",
        f"| judging 1 pair ({one_calls} calls) | {one:.2f} s |",
        f"| judging {len(pairs)} pairs ({calls} calls) | {every:.2f} s ({every / one:.2f}x one pair; "
        f"{len(pairs)}x expected) |",
        f"| ideal at this concurrency (calls x {DELAY * 1000:.0f} ms / {concurrency}) | {ideal:.2f} s "
        f"(measured {every / ideal:.2f}x it) |", "",
        "- The arena generates 400 answers from one engine start, where four compares generate 800 (each also "
        "answers with the base) from four; most of the gain is the engine starts (tens of seconds each on CPU), "
        "the rest is the base passes a compare repeats. On the CPU build the adapters run one after another in the "
        "engine (it cannot mix models in a batch); on CUDA one call batches all of them.",
        "- Judging is linear in pairs x items x 2 calls: the pairs run one after another, each at the judge's "
        "concurrency, so the time is about calls x latency / concurrency plus each pair's tail.",
    ]
    print("\n".join(lines))
    _write_section(lines)


def _write_section(lines: list[str]) -> None:
    """Replace this script's section of RESULTS.md (other sections belong to other scripts), or append it."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    wrapped = [line if line.startswith("|") else
               textwrap.fill(line, width=110, subsequent_indent="  " if line.startswith("- ") else "")
               for line in lines]
    section = "\n".join(wrapped) + "\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: section + "\n", current).rstrip("\n") + "\n"
    else:
        updated = current.rstrip("\n") + "\n\n\n" + section
    RESULTS.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
