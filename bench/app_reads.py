"""How the leaderboard app's reads scale with the store, and how long they keep a writer waiting.

Builds a synthetic store of N runs (every run: 100 golden items, both judged orders, both answers), then
measures in one process run:
  - read_leaderboard / read_run wall time at N and at 10*N runs (ratio: does a page load grow linearly?);
  - the leaderboard's table and Bradley-Terry ranking on top of the read;
  - a writer's save_run time alone, and while another process reloads the leaderboard in a loop
    (ratio: what an open app costs a compare finishing its run).

    .venv/bin/python bench/app_reads.py [--runs 20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import time
from pathlib import Path

ITEMS = 100


def _run(index: int, golden: str):
    from evalhub.records import Generation, ModelRef, RunRecord

    rng = random.Random(index)
    base = ModelRef("base-0", "base", "/models/base")
    tuned = ModelRef(f"adapter-{index % 7}", "adapter", f"/adapters/a{index % 7}", "/models/base", adapter_hash=f"h{index % 7}")
    p_win = 0.3 + 0.08 * (index % 7)
    generations, judgments = [], []
    for item in range(ITEMS):
        item_id = f"i{item}"
        for role in ("base", "tuned"):
            generations.append((role, golden, {"temperature": 0}, Generation(item_id, f"prompt {item}", "answer " * rng.randint(3, 30))))
        verdict = "win" if rng.random() < p_win else rng.choice(["loss", "tie"])
        for position in "AB":
            judgments.append({"golden_file": golden, "item_id": item_id, "tuned_position": position, "judge": "reference",
                              "raw_reply": "{}", "status": "ok", "verdict": verdict, "reason": "closer to the reference",
                              "prompt_tokens": 300, "completion_tokens": 20, "cost_usd": 0.0004, "is_canary": False})
    stats = {"n": ITEMS, "wins": 0, "losses": 0, "ties": 0, "scored": ITEMS, "unscored": 0, "win_rate": p_win,
             "win_rate_ci": [p_win - 0.1, p_win + 0.1], "p_value": 0.05, "parse_failures": 0, "position_consistency": 1.0,
             "lc_win_rate": p_win, "canary_accuracy": None, "judge_calls": 2 * ITEMS, "cost_usd": 0.08}
    return RunRecord(run_id=f"run-{index:05d}", kind="compare", created_at=f"2026-01-01 00:{index // 60 % 60:02d}:{index % 60:02d}",
                     base=base, tuned=tuned, config={"inputs": {golden: "sha"}, "versions": {}}, judge="reference",
                     golden=[golden], summary={"run_id": f"run-{index:05d}", "judge_stats": stats},
                     generations=generations, judgments=judgments)


def _fill(db: Path, start: int, stop: int) -> None:
    from evalhub.store import save_run

    for index in range(start, stop):
        save_run(_run(index, "golden.jsonl"), db)


def _timed(function, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _page_load(db: Path) -> tuple[float, float, float]:
    from evalhub.app.labels import run_labels
    from evalhub.app.leaderboard_table import leaderboard_rows
    from evalhub.app.ratings import golden_set_ratings
    from evalhub.store import read_leaderboard, read_run

    read = _timed(lambda: read_leaderboard(db))
    data = read_leaderboard(db)
    labels = run_labels(data.runs)
    table = _timed(lambda: leaderboard_rows(data, labels))
    ranking = _timed(lambda: golden_set_ratings(data, labels, "sha", {r.run_id for r in data.runs}), repeat=1)
    run = _timed(lambda: read_run(data.runs[0].run_id, db))
    return read, table + ranking, run


def _reload_forever(db: str, stop) -> None:
    from evalhub.store import read_leaderboard

    while not stop.is_set():
        read_leaderboard(Path(db))


def _writer_latency(db: Path, first: int, count: int) -> list[float]:
    from evalhub.store import save_run

    latencies = []
    for index in range(first, first + count):
        run = _run(index, "golden.jsonl")
        start = time.perf_counter()
        save_run(run, db)
        latencies.append(time.perf_counter() - start)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    n = args.runs
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.duckdb"
        _fill(db, 0, n)
        small = _page_load(db)
        _fill(db, n, 10 * n)
        large = _page_load(db)
        print(f"store of {n} runs: read_leaderboard {small[0] * 1000:.0f} ms, table + ranking {small[1] * 1000:.0f} ms, "
              f"read_run {small[2] * 1000:.0f} ms")
        print(f"store of {10 * n} runs: read_leaderboard {large[0] * 1000:.0f} ms, table + ranking {large[1] * 1000:.0f} ms, "
              f"read_run {large[2] * 1000:.0f} ms")
        print(f"ratio for 10x the runs: read_leaderboard {large[0] / small[0]:.1f}x, table + ranking "
              f"{large[1] / small[1]:.1f}x, read_run {large[2] / small[2]:.1f}x")

        alone = _writer_latency(db, 10 * n, 5)
        stop = multiprocessing.get_context("spawn").Event()
        reader = multiprocessing.get_context("spawn").Process(target=_reload_forever, args=(str(db), stop))
        reader.start()
        time.sleep(3)  # let the reader get going (imports, first reads)
        contended = _writer_latency(db, 10 * n + 5, 5)
        stop.set()
        reader.join(60)
        print(f"save_run alone: median {statistics.median(alone) * 1000:.0f} ms; while the app reloads in a loop: "
              f"median {statistics.median(contended) * 1000:.0f} ms, worst {max(contended) * 1000:.0f} ms "
              f"(ratio of medians {statistics.median(contended) / statistics.median(alone):.1f}x)")


if __name__ == "__main__":
    main()
