"""How the leaderboard app's reads scale with the store, on each engine, and what they cost a writer.

Builds a synthetic store of N runs (every run: 100 golden items, both judged orders, both answers; 7 adapters
of one base), then measures in one process run, for DuckDB and PostgreSQL:
  - the leaderboard page: `read_leaderboard` (aggregated in the database) + the table + the Bradley-Terry
    ranking, at N and at 10*N runs (ratio: how a page grows with the store), and `read_run`;
  - a writer's `save_run` alone, and while another process reloads the leaderboard in a loop.

Goal (issue 15): at 10,000 runs a page takes at most 500 ms on DuckDB and 1 s on PostgreSQL, and grows at
most 2x from 1,000 to 10,000 runs.

    .venv/bin/python bench/app_reads.py [--runs 1000] [--engines duckdb,postgres] [--pg-url URL]

Without --pg-url, PostgreSQL runs on a throwaway server in a temporary folder (tests/pg_server.py: initdb,
127.0.0.1, fsync off).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ITEMS = 100
BATCH = 250
REPO = Path(__file__).resolve().parents[1]


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
    minutes, seconds = divmod(index, 60)
    return RunRecord(run_id=f"run-{index:05d}", kind="compare",
                     created_at=f"2026-01-{1 + minutes // 1440:02d} {minutes // 60 % 24:02d}:{minutes % 60:02d}:{seconds:02d}",
                     base=base, tuned=tuned, config={"inputs": {golden: "sha"}, "versions": {}}, judge="reference",
                     golden=[golden], summary={"run_id": f"run-{index:05d}", "judge_stats": stats},
                     generations=generations, judgments=judgments)


def _fill(db: str, start: int, stop: int) -> float:
    from evalhub.store import save_runs

    began = time.perf_counter()
    for first in range(start, stop, BATCH):
        save_runs([_run(index, "golden.jsonl") for index in range(first, min(stop, first + BATCH))], db)
    return time.perf_counter() - began


def _timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _page(db: str) -> None:
    """What the leaderboard page computes: the read, the table, and the ranking of each golden set shown."""
    from evalhub.app.labels import store_labels
    from evalhub.app.leaderboard_table import leaderboard_rows
    from evalhub.app.ratings import golden_set_ratings
    from evalhub.store import read_leaderboard

    data = read_leaderboard(db)
    labels = store_labels(data.models, data.golden_sets)
    rows = leaderboard_rows(data, labels)
    for key in rows["golden_key"].dropna().unique():
        golden_set_ratings(data.pairs, labels, key)


def _measure(db: str) -> dict[str, float]:
    from evalhub.store import read_leaderboard, read_run

    _page(db)  # warm: imports, the server's caches
    return {"read_leaderboard": _timed(lambda: read_leaderboard(db)), "page": _timed(lambda: _page(db)),
            "read_run": _timed(lambda: read_run("run-00000", db))}


def _reload_forever(db: str, stop) -> None:
    from evalhub.store import read_leaderboard

    while not stop.is_set():
        read_leaderboard(db)


def _writer_latency(db: str, first: int, count: int) -> list[float]:
    from evalhub.store import save_run

    latencies = []
    for index in range(first, first + count):
        run = _run(index, "golden.jsonl")
        start = time.perf_counter()
        save_run(run, db)
        latencies.append(time.perf_counter() - start)
    return latencies


def _engine(name: str, db: str, n: int) -> None:
    fill_small = _fill(db, 0, n)
    small = _measure(db)
    fill_large = _fill(db, n, 10 * n)
    large = _measure(db)
    print(f"[{name}] filled {n} runs in {fill_small:.0f} s, {10 * n} in {fill_small + fill_large:.0f} s "
          f"({(fill_large / (9 * n)) * 1000:.1f} ms a run, {BATCH} runs a transaction)")
    for key, label in (("page", "leaderboard page (read + table + ranking)"), ("read_leaderboard", "  of which read_leaderboard"),
                       ("read_run", "read_run (one run's page)")):
        print(f"[{name}] {label}: {n} runs {small[key] * 1000:.0f} ms, {10 * n} runs {large[key] * 1000:.0f} ms, "
              f"ratio {large[key] / small[key]:.2f}x")
    alone = _writer_latency(db, 10 * n, 5)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    reader = spawn.Process(target=_reload_forever, args=(db, stop))
    reader.start()
    time.sleep(3)  # let the reader get going (imports, first reads)
    contended = _writer_latency(db, 10 * n + 5, 5)
    stop.set()
    reader.join(60)
    print(f"[{name}] save_run alone: median {statistics.median(alone) * 1000:.0f} ms; while the app reloads in a loop: "
          f"median {statistics.median(contended) * 1000:.0f} ms, worst {max(contended) * 1000:.0f} ms "
          f"(ratio of medians {statistics.median(contended) / statistics.median(alone):.1f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument("--pg-url", help="An empty PostgreSQL database (default: a throwaway local server)")
    args = parser.parse_args()
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory() as folder:
        if "duckdb" in engines:
            _engine("duckdb", str(Path(folder) / "bench.duckdb"), args.runs)
        if "postgres" in engines:
            if args.pg_url:
                _engine("postgres", args.pg_url, args.runs)
            else:
                sys.path.insert(0, str(REPO))
                from tests.pg_server import PostgresServer

                server = PostgresServer().start()
                try:
                    _engine("postgres", server.new_database(), args.runs)
                finally:
                    server.stop()


if __name__ == "__main__":
    main()
