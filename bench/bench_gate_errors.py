"""How often the gate's recipes decide wrongly, on scripted models of known quality and scripted judges.

Models: each answers an item right with probability q (seeded per model, repetition and item); answers are
distinct texts, so no pair is settled as identical. Judges, served by an OpenAI-compatible server on
127.0.0.1 (tests/fake_openai.py, in a child process) and reached through evalhub's real judge client:
- perfect: prefers the right answer, tie when both are right or both wrong;
- noisy: a quarter of its calls decided at random, two to one for the first answer; otherwise perfect;
- always-first: answers "A" whatever it is shown.

For each judge and each README recipe, the share of runs that pass, over --reps runs of --items items:
- equal: both models q = 0.6 (a superiority recipe that passes is a false pass);
- better: the candidate q = 0.8 against 0.6, a true win rate of 0.6, 10 points better than a tie (a fail is
  a false fail);
- worse: the candidate q = 0.4 against 0.6, a true win rate of 0.4 (a non-inferiority recipe with a 5-point
  margin that passes is a false pass).
Then --sequential on a clear case (a 95%-right candidate against a 10%-right baseline, 200 items): the judge
calls it makes against judging every item, and whether the verdicts agree.

    .venv/bin/python bench/bench_gate_errors.py [--reps 200] [--items 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The README's gate recipes, as flags of GateThresholds; "claim" is what a pass asserts.
RECIPES = {
    "better: --min-win-rate-lower 0.5": ({"min_win_rate_lower": 0.5}, "superiority"),
    "CI: --min-win-rate 0.55 --min-win-rate-lower 0.5 --min-position-consistency 0.7": (
        {"min_win_rate": 0.55, "min_win_rate_lower": 0.5, "min_position_consistency": 0.7}, "superiority"),
    "no worse: --min-win-rate-lower 0.45": ({"min_win_rate_lower": 0.45}, "non-inferiority"),
    # Not a recipe: the point threshold alone, to show why the README does not recommend it.
    "(not a recipe) --min-win-rate 0.55": ({"min_win_rate": 0.55}, "superiority"),
}
CONDITIONS = {"equal": (0.6, 0.6), "better": (0.8, 0.6), "worse": (0.4, 0.6)}
JUDGES = ("perfect", "noisy", "always-first")


def _unit(*parts) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def _answer(text: str, side: str) -> str:
    match = re.search(rf"<<<ANSWER {side} [^>]*>>>\n(.*?)\n<<<END OF ANSWER {side}", text, re.S)
    return match.group(1) if match else ""


def _judge_reply(body: dict) -> str:
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    kind = body.get("model", "")
    a_right, b_right = _answer(text, "A").startswith("Right"), _answer(text, "B").startswith("Right")
    verdict = "A" if a_right and not b_right else "B" if b_right and not a_right else "tie"
    if kind == "always-first":
        verdict = "A"
    elif kind == "noisy" and _unit("noise", text) < 0.25:
        verdict = "A" if _unit("coin", text) < 2 / 3 else "B"
    return json.dumps({"verdict": verdict, "reason": "scripted"})


def _serve(connection) -> None:
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI(_judge_reply) as server:
        connection.send(server.base_url)
        connection.recv()


def _world(items: int, tuned_q: float, base_q: float, rep: int):
    from evalhub.records import Generation, GoldenItem

    golden = [GoldenItem(id=f"i{k}", instruction=f"Question {k} of run {rep}?", output=f"Right answer {k}.")
              for k in range(items)]

    def answers(side: str, q: float) -> dict:
        return {i.id: Generation(i.id, i.prompt, f"{'Right' if _unit(side, rep, i.id) < q else 'Wrong'} answer "
                                                 f"{i.id} from the {side} model, run {rep}.") for i in golden}

    return golden, answers("candidate", tuned_q), answers("baseline", base_q)


def _options(url: str, cache: Path):
    from evalhub.judge import JudgeOptions

    return JudgeOptions(base_url=url, cache_path=str(cache), progress=False, concurrency=64, bootstrap_resamples=1000)


def _summary(stats: dict):
    from evalhub.contracts import JudgeStats, RunSummary

    stats = {k: v for k, v in stats.items() if k != "extra"}
    return RunSummary(run_id="bench", base="baseline", tuned="candidate", judge_stats=JudgeStats(**stats))


def _pass_rates(url: str, cache: Path, reps: int, items: int) -> dict:
    from evalhub.contracts import GateThresholds
    from evalhub.gate import evaluate_gate
    from evalhub.judge import judge_pairs

    passes = {(j, c, r): 0 for j in JUDGES for c in CONDITIONS for r in RECIPES}
    for judge in JUDGES:
        for condition, (tuned_q, base_q) in CONDITIONS.items():
            for rep in range(reps):
                golden, tuned, base = _world(items, tuned_q, base_q, rep)
                outcome = judge_pairs(golden, base, tuned, f"openai:{judge}", _options(url, cache))
                summary = _summary(outcome.stats)
                for recipe, (flags, _) in RECIPES.items():
                    passes[(judge, condition, recipe)] += evaluate_gate(summary, GateThresholds(**flags)).passed
    return {key: count / reps for key, count in passes.items()}


def _sequential(url: str, cache: Path, reps: int) -> list[dict]:
    from evalhub.contracts import CompareRequest, GateThresholds
    from evalhub.gate import evaluate_gate
    from evalhub.judge import judge_pairs
    from evalhub.stages import RunContext
    from evalhub.stages.judgments import judge_sequentially

    thresholds = GateThresholds(min_win_rate=0.55, min_win_rate_lower=0.5)
    rows = []
    for judge in ("perfect", "noisy"):
        for rep in range(reps):
            golden, tuned, base = _world(200, 0.95, 0.10, 10_000 + rep)
            options = _options(url, cache / f"seq-{judge}-{rep}")
            full = judge_pairs(golden, base, tuned, f"openai:{judge}", options)
            request = CompareRequest(base="baseline", tuned="candidate", thresholds=thresholds, sequential=True)
            context = RunContext(request=request, golden={}, items=golden, judge=f"openai:{judge}", say=lambda _: None)
            seq_options = _options(url, cache / f"seq-{judge}-{rep}-sequential")
            outcome, info = judge_sequentially(
                context, lambda items, options: judge_pairs(items, base, tuned, f"openai:{judge}", options), seq_options)
            summary = _summary(outcome.stats)
            summary.judge_stats.sequential = info
            rows.append({"judge": judge, "full_calls": full.stats["judge_calls"],
                         "sequential_calls": outcome.stats["judge_calls"], "items_judged": info.items_judged,
                         "same_verdict": evaluate_gate(_summary(full.stats), thresholds).passed
                         == evaluate_gate(summary, thresholds).passed})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--sequential-reps", type=int, default=20)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    url = parent.recv()
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rates = _pass_rates(url, Path(tmp) / "cache.jsonl", args.reps, args.items)
            sequential = _sequential(url, Path(tmp), args.sequential_reps)
    finally:
        parent.send("stop")
        server.join(timeout=5)

    print(f"pass rates over {args.reps} runs of {args.items} items per cell "
          f"(false passes: superiority on equal or worse, non-inferiority on worse; false fails: better)")
    print(f"| recipe | judge | equal | better (0.6) | worse (0.4) |")
    print("|---|---|---|---|---|")
    worst_noisy, worst_first = 0.0, 0.0
    for recipe, (_, claim) in RECIPES.items():
        for judge in JUDGES:
            cells = {c: rates[(judge, c, recipe)] for c in CONDITIONS}
            false_pass = cells["worse"] if claim == "non-inferiority" else max(cells["equal"], cells["worse"])
            if not recipe.startswith("(not"):
                if judge == "noisy":
                    worst_noisy = max(worst_noisy, false_pass)
                if judge == "always-first":
                    worst_first = max(worst_first, false_pass, cells["better"])
            print(f"| {recipe} | {judge} | {cells['equal']:.3f} | {cells['better']:.3f} | {cells['worse']:.3f} |")
    print(f"worst false-pass rate of a recipe under the noisy judge: {worst_noisy:.3f} (goal <= 0.05)")
    print(f"worst pass rate of a recipe under the always-first judge: {worst_first:.3f} (goal 0)")
    for judge in ("perfect", "noisy"):
        rows = [r for r in sequential if r["judge"] == judge]
        full = sum(r["full_calls"] for r in rows)
        seq = sum(r["sequential_calls"] for r in rows)
        same = sum(r["same_verdict"] for r in rows)
        judged = sum(r["items_judged"] for r in rows) / len(rows)
        print(f"--sequential, {judge} judge, 95%-right vs 10%-right on 200 items, {len(rows)} runs: "
              f"{seq / full:.3f} of the calls of judging every item (goal <= 0.5), {judged:.0f} items judged on "
              f"average, same verdict in {same} of {len(rows)}")
    print(f"took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
