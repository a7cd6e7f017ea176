"""Judge throughput: 200 items x 2 orders against a loopback OpenAI-compatible judge that answers in 100 ms.

Goal: at most 3 s at the default concurrency, and a re-run that makes zero judge calls. The judge server runs
in a child process (tests/fake_openai.py), so its threads do not share the client's interpreter.

    .venv/bin/python bench/bench_judge.py [--items 200] [--delay 0.1] [--repeats 3] [--concurrency 16 64]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL_SECONDS = 3.0


def _serve(delay: float, connection) -> None:
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI(lambda body: json.dumps({"verdict": "A", "reason": "first is fine"}), delay=delay) as server:
        connection.send(server.base_url)
        connection.recv()  # until the parent says stop


def _items(count: int):
    from evalhub.records import GoldenItem, Generation

    items = [GoldenItem(id=f"b{n:04d}", instruction=f"Question {n}: what is {n} plus {n}?", output=f"{2 * n}.")
             for n in range(count)]
    tuned = {i.id: Generation(i.id, i.prompt, f"It is {2 * int(i.id[1:])}.") for i in items}
    base = {i.id: Generation(i.id, i.prompt, "I am not sure.") for i in items}
    return items, tuned, base


def _timed_run(items, tuned, base, url: str, cache: Path, concurrency: int | None):
    from evalhub.judge import JudgeOptions, judge_pairs

    options = {"base_url": url, "cache_path": str(cache), "progress": False}
    if concurrency is not None:
        options["concurrency"] = concurrency
    start, cpu = time.perf_counter(), time.process_time()
    outcome = judge_pairs(items, base, tuned, "openai:bench-judge", JudgeOptions(**options))
    return time.perf_counter() - start, time.process_time() - cpu, outcome.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds the judge takes per reply")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[16, 64],
                        help="other concurrencies to compare with the default")
    parser.add_argument("--repeats", type=int, default=3, help="first runs to take the median of")
    args = parser.parse_args()

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    from evalhub.judge import JudgeOptions

    default = JudgeOptions().concurrency
    items, tuned, base = _items(args.items)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.delay, child), daemon=True)
    server.start()
    url = parent.recv()
    calls = 2 * args.items
    serial = calls * args.delay
    try:
        with tempfile.TemporaryDirectory() as folder:
            _timed_run(items[:4], tuned, base, url, Path(folder) / "warm.jsonl", None)  # imports, first connection
            print(f"{args.items} items x 2 orders = {calls} judge calls, judge answers in {args.delay * 1000:.0f} ms, "
                  f"default concurrency {default}; median of {args.repeats} runs, each with a fresh cache")
            runs = [_timed_run(items, tuned, base, url, Path(folder) / f"cache{n}.jsonl", None)
                    for n in range(args.repeats)]
            first, cpu, stats = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
            again, _, rerun = _timed_run(items, tuned, base, url, Path(folder) / "cache0.jsonl", None)
            print(f"first run:  {first:6.2f} s  judge_calls {stats['judge_calls']}  "
                  f"({first / GOAL_SECONDS:.2f}x the {GOAL_SECONDS:.0f} s goal; {serial / first:.1f}x faster than "
                  f"{serial:.0f} s one call at a time; ideal at this concurrency {calls / default * args.delay:.2f} s; "
                  f"all runs {', '.join(f'{run[0]:.2f}' for run in runs)} s)")
            print(f"client CPU: {cpu:6.2f} s  ({cpu / calls * 1000:.1f} ms a call)")
            print(f"re-run:     {again:6.2f} s  judge_calls {rerun['judge_calls']}  cached replies used "
                  f"{rerun['extra']['cached_replies_used']}  ({again / first:.3f}x the first run)")
            for concurrency in args.concurrency:
                seconds, _, other = _timed_run(items, tuned, base, url, Path(folder) / f"c{concurrency}.jsonl",
                                               concurrency)
                print(f"concurrency {concurrency:3d}: {seconds:6.2f} s  judge_calls {other['judge_calls']}  "
                      f"({seconds / first:.2f}x the default)")
    finally:
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
