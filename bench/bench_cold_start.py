"""A cold `make demo`, as a newcomer runs it: a fresh copy of the repository, no venv, and empty caches.

Each commit given (HEAD by default; `--baseline REF` adds one to compare with, in the same run) is exported
with `git archive` into a temporary folder and its `make demo` runs there with uv's, evalhub's, vLLM's and
inductor's caches pointed at empty folders beside it, so nothing is reused from this machine's earlier runs
(the local torch wheel folder, $PIP_FIND_LINKS, stays: it is part of the machine). Every line the command
prints is timestamped, and the phases are read off the demo's own lines:

    install   until make starts `evalhub demo`
    toy world until the demo starts training the LoRA adapter
    LoRA      until the demo starts judging
    compare   until the command ends

Then `make demo` runs a second time in the same folder, everything installed and cached (`warm_total_s`).
Prints one JSON line per commit (seconds per phase, total, lines printed, the warm total) and, with a
baseline, the ratio of the cold totals. Run it on an otherwise idle machine: `python bench/bench_cold_start.py --baseline 8aac722`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The demo's own progress lines that open each phase after the install (evalhub/demo.py).
PHASE_MARKS = (("toy world", "evalhub demo: building the toy world"),
               ("LoRA", "evalhub demo: training a LoRA adapter"),
               ("compare", "evalhub demo: judging with"))


def cold_demo(ref: str, root: Path) -> dict:
    src = root / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    env = {**os.environ, "UV_CACHE_DIR": str(root / "uv"), "EVALHUB_CACHE": str(root / "evalhub"),
           "VLLM_CACHE_ROOT": str(root / "vllm"), "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor"),
           "EVALHUB_DB": str(root / "demo.duckdb")}
    lines, total = _run_demo(ref, src, env)
    marks = [next((t for t, text in lines if mark in text), None) for _, mark in PHASE_MARKS]
    if None in marks:
        raise SystemExit(f"error: make demo at {ref} did not print the demo's phase lines; is {ref} too old?")
    ends = marks[1:] + [total]
    phases = {"install": round(marks[0], 1)}
    phases.update({name: round(end - start, 1) for (name, _), start, end in zip(PHASE_MARKS, marks, ends)})
    _, warm = _run_demo(ref, src, env)  # again, everything installed, built and cached
    return {"ref": ref, "commit": _commit(ref), "seconds": phases, "total_s": round(total, 1),
            "lines_printed": len(lines), "warm_total_s": round(warm, 1)}


def _run_demo(ref: str, src: Path, env: dict) -> tuple[list[tuple[float, str]], float]:
    """`make demo` in `src`: its output lines, each with the seconds since the start, and the total seconds."""
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    # Bytes, split at newlines only: a progress bar redraws itself on one terminal line with carriage returns,
    # which text mode would count as lines.
    with subprocess.Popen(["make", "demo"], cwd=src, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as make:
        for line in make.stdout:
            lines.append((time.monotonic() - started, line.decode(errors="replace").rstrip("\n")))
    total = time.monotonic() - started
    if make.returncode != 0:
        tail = "\n".join(text for _, text in lines[-10:])
        raise SystemExit(f"error: make demo at {ref} failed (exit {make.returncode}):\n{tail}")
    return lines, total


def _commit(ref: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], check=True, capture_output=True,
                          text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD", help="the commit to measure (default HEAD)")
    parser.add_argument("--baseline", help="a commit to measure first, in the same run, for the ratio")
    args = parser.parse_args()
    results = []
    for ref in ([args.baseline] if args.baseline else []) + [args.ref]:
        with tempfile.TemporaryDirectory(prefix="evalhub-cold-") as root:
            result = cold_demo(ref, Path(root))
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.baseline:
        print(json.dumps({"ratio_total": round(results[1]["total_s"] / results[0]["total_s"], 2)}))


if __name__ == "__main__":
    sys.exit(main())
