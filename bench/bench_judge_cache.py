"""Judge reply cache: opening a cache and answering 400 look-ups costs the same at 10,000 and 1,000,000 replies.

Builds two caches (replies of about 300 bytes, keys as the judge makes them: SHA-256 hex), then, for each, in
fresh processes, times `ReplyCache(path)` plus 400 `get`s (half hits, half misses) and reads the process's peak
RSS. Goal: open + 400 look-ups in at most 100 ms on the 1M cache, and peak RSS that does not grow with the
cache (the ratio 1M / 10k near 1). `--legacy` also times the old way, the JSONL file parsed whole into a dict.

    .venv/bin/python bench/bench_judge_cache.py [--sizes 10000 1000000] [--repeats 3] [--dir DIR] [--legacy]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL_MS = 100.0
LOOKUPS = 400
WORDS = ("the first answer states the fact directly while the second hedges and adds an unrelated caveat about "
         "units so it is less helpful overall and slightly longer than needed").split()


def _key(n: int) -> str:
    return hashlib.sha256(f"bench-item-{n}".encode()).hexdigest()


def _reply(n: int) -> str:
    """A judge reply of about 300 bytes: a short JSON verdict with a reason, varied per record."""
    rng = random.Random(n)
    reason = " ".join(rng.choice(WORDS) for _ in range(46))
    return json.dumps({"verdict": rng.choice("AB") if n % 7 else "tie", "reason": reason})


def _rows(size: int):
    for n in range(size):
        yield _key(n), _reply(n), 250 + n % 500, 40 + n % 60


def build(path: Path, size: int) -> float:
    from evalhub.judge._cache import ReplyCache

    started = time.perf_counter()
    cache = ReplyCache(path)
    cache.put_many(_rows(size))  # executemany in one transaction
    cache.close()
    return time.perf_counter() - started


def build_jsonl(path: Path, size: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for key, reply, prompt_tokens, completion_tokens in _rows(size):
            handle.write(json.dumps({"key": key, "reply": reply, "prompt_tokens": prompt_tokens,
                                     "completion_tokens": completion_tokens}) + "\n")


def _probe_keys(size: int) -> list[str]:
    rng = random.Random(size)
    hits = [_key(rng.randrange(size)) for _ in range(LOOKUPS // 2)]
    misses = [_key(size + rng.randrange(10**9)) for _ in range(LOOKUPS - len(hits))]
    keys = hits + misses
    rng.shuffle(keys)
    return keys


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def probe(path: Path, size: int, legacy: bool) -> dict:
    """Run in a fresh process: open the cache, answer 400 look-ups, report time and peak RSS."""
    keys = _probe_keys(size)
    started = time.perf_counter()
    import evalhub.judge._cache as module  # counted apart: a run imports it once, whatever the cache size
    imported = time.perf_counter()
    rss_before = _rss_mib()
    opened_at = time.perf_counter()
    if legacy:  # the old module's load: every line parsed into one dict
        replies = {}
        with open(path, "r", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                replies[record["key"]] = record
        found = sum(replies.get(key) is not None for key in keys)
    else:
        cache = module.ReplyCache(path)
        found = sum(cache.get(key) is not None for key in keys)
        cache.close()
    done = time.perf_counter()
    return {"import_ms": (imported - started) * 1e3, "open_lookups_ms": (done - opened_at) * 1e3, "hits": found,
            "rss_before_open_mib": rss_before,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def probe_in_fresh_process(path: Path, size: int, legacy: bool = False) -> dict:
    command = [sys.executable, __file__, "--probe", str(path), "--sizes", str(size)] + (["--legacy"] if legacy else [])
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per size; the best is reported")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the caches (default: a temp dir)")
    parser.add_argument("--legacy", action="store_true", help="also time the old JSONL cache, parsed whole")
    parser.add_argument("--probe", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.probe is not None:
        print(json.dumps(probe(args.probe, args.sizes[0], args.legacy)))
        return

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-judge-cache-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, sqlite {__import__('sqlite3').sqlite_version}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    try:
        for size in args.sizes:
            path = root / f"replies-{size}.sqlite"
            seconds = build(path, size)
            mib = sum(p.stat().st_size for p in root.glob(f"replies-{size}.sqlite*")) / 2**20
            runs = [probe_in_fresh_process(path, size) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["open_lookups_ms"])
            assert all(r["hits"] == LOOKUPS // 2 for r in runs), runs
            results[size] = best
            print(f"{size:>9,} replies: built in {seconds:.1f} s ({mib:.0f} MiB); open + {LOOKUPS} look-ups "
                  f"{best['open_lookups_ms']:.1f} ms (runs: "
                  f"{', '.join('%.1f' % r['open_lookups_ms'] for r in runs)}), module import "
                  f"{best['import_ms']:.1f} ms, peak RSS {best['peak_rss_mib']:.1f} MiB "
                  f"(RSS before open {best['rss_before_open_mib']:.1f} MiB)")
            if args.legacy:
                jsonl = root / f"replies-{size}.jsonl"
                build_jsonl(jsonl, size)
                old = probe_in_fresh_process(jsonl, size, legacy=True)
                results[(size, "legacy")] = old
                print(f"{size:>9,} replies, old JSONL read whole: open + {LOOKUPS} look-ups "
                      f"{old['open_lookups_ms']:.1f} ms, peak RSS {old['peak_rss_mib']:.1f} MiB")
                jsonl.unlink()
            for p in root.glob(f"replies-{size}.sqlite*"):
                p.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)

    small, large = min(args.sizes), max(args.sizes)
    if small != large:
        a, b = results[small], results[large]
        print(f"peak RSS {large:,} / {small:,}: {b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x "
              f"(above RSS before open: {b['peak_rss_mib'] - b['rss_before_open_mib']:.1f} vs "
              f"{a['peak_rss_mib'] - a['rss_before_open_mib']:.1f} MiB); open + look-ups {large:,} / {small:,}: "
              f"{b['open_lookups_ms'] / a['open_lookups_ms']:.2f}x")
        if args.legacy:
            old = results[(large, "legacy")]
            print(f"old JSONL / sqlite at {large:,}: open + look-ups "
                  f"{old['open_lookups_ms'] / b['open_lookups_ms']:.0f}x, peak RSS "
                  f"{old['peak_rss_mib'] / b['peak_rss_mib']:.1f}x")
    verdict = "meets" if results[large]["open_lookups_ms"] <= GOAL_MS else "MISSES"
    print(f"goal: open + {LOOKUPS} look-ups at {large:,} replies <= {GOAL_MS:.0f} ms: {verdict} "
          f"({results[large]['open_lookups_ms']:.1f} ms)")


if __name__ == "__main__":
    main()
