"""Verdicts that cannot mislead: a judge that carries no information fails every win-rate check, saying why;
power and the minimum detectable effect; clustered intervals; the anytime-valid sequence of --sequential.

Numbers are pinned by hand: the comments show the arithmetic.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalhub.contracts import GateThresholds, JudgeStats, RunSummary, SequentialInfo, build
from evalhub.errors import UserError
from evalhub.gate import evaluate_gate
from tests.fake_openai import FakeOpenAI


def _summary(**stats) -> RunSummary:
    base = {"n": 40, "wins": 0, "losses": 0, "ties": 40, "scored": 40, "unscored": 0, "win_rate": 0.5,
            "win_rate_ci": (0.5, 0.5), "position_consistency": 0.0, "inconsistent": 40}
    return RunSummary(run_id="r", base="b", tuned="t", judge="openai:j", judge_stats=JudgeStats(**{**base, **stats}))


# ---------------------------------------------------------------- an uninformative judge never passes

def test_an_always_first_judge_fails_every_win_rate_check_naming_position_consistency():
    # Both orders always disagree: every item a tie, win rate exactly 0.5 with a zero-width interval, which a
    # non-inferiority threshold of 0.45 would otherwise pass.
    result = evaluate_gate(_summary(), GateThresholds(min_win_rate=0.5, min_win_rate_lower=0.45))
    assert not result.passed and [c.passed for c in result.checks] == [False, False]
    for check in result.checks:
        assert check.value == 0.5
        assert check.detail.startswith("position consistency 0.00 < 0.60: the judge's verdicts follow the answer order")
    # The floor is overridable, and then the same numbers pass.
    assert evaluate_gate(_summary(), GateThresholds(min_win_rate_lower=0.45, min_position_consistency=0.0)).passed


def test_the_position_consistency_floor_is_0_60_and_a_given_threshold_replaces_it():
    assert not evaluate_gate(_summary(position_consistency=0.59), GateThresholds(min_win_rate=0.5)).passed
    assert evaluate_gate(_summary(position_consistency=0.60), GateThresholds(min_win_rate=0.5)).passed
    strict = evaluate_gate(_summary(position_consistency=0.65), GateThresholds(min_win_rate=0.5,
                                                                               min_position_consistency=0.7))
    assert [(c.name, c.passed) for c in strict.checks] == [("min_win_rate", False), ("min_position_consistency", False)]
    assert "position consistency 0.65 < 0.70" in strict.checks[0].detail


def test_unknown_position_consistency_fails_unless_the_floor_is_zero():
    # Every pair identical: nothing was judged in both orders with two different answers.
    summary = _summary(position_consistency=None, inconsistent=0)
    check = evaluate_gate(summary, GateThresholds(min_win_rate_lower=0.45)).checks[0]
    assert not check.passed and "position consistency is unknown" in check.detail
    # A floor of 0 lets the win-rate check pass; the position-consistency check itself still cannot measure.
    lowered = evaluate_gate(summary, GateThresholds(min_win_rate_lower=0.45, min_position_consistency=0.0))
    assert [(c.name, c.passed) for c in lowered.checks] == [("min_win_rate_lower", True),
                                                          ("min_position_consistency", False)]


def test_too_few_items_scored_fails_the_win_rate_checks_with_a_default_share():
    few = _summary(n=40, scored=31, unscored=9, ties=31, position_consistency=0.9, inconsistent=0)
    check = evaluate_gate(few, GateThresholds(min_win_rate_lower=0.45)).checks[0]
    # 31 / 40 = 0.775 < 0.80
    assert not check.passed and check.detail.startswith("31 of 40 items scored (0.78 < 0.80)")
    assert evaluate_gate(few, GateThresholds(min_win_rate_lower=0.45, min_scored=0.75)).passed
    enough = _summary(n=40, scored=32, unscored=8, ties=32, position_consistency=0.9, inconsistent=0)
    assert evaluate_gate(enough, GateThresholds(min_win_rate_lower=0.45)).passed  # 32 / 40 = 0.80


def test_min_scored_alone_is_no_gate():
    assert not GateThresholds(min_scored=0.9).any()
    with pytest.raises(UserError, match="no gate thresholds given"):
        evaluate_gate(_summary(), GateThresholds(min_scored=0.9))


def test_inconsistent_items_are_counted_apart_from_real_ties():
    from evalhub.stats.pairwise import ItemVerdicts, pairwise_stats

    items = [ItemVerdicts("a", "win", "loss", 5, 5),   # the orders disagree: inconsistent, folded to a tie
             ItemVerdicts("b", "tie", "tie", 5, 5),    # a real tie
             ItemVerdicts("c", "win", "win", 5, 5),
             ItemVerdicts("d", "win", None, 5, 5),     # one order unreadable: unscored, not inconsistent
             ItemVerdicts("e", "tie", "tie", 5, 5, identical=True)]
    stats = pairwise_stats(items, resamples=200)
    assert stats["ties"] == 3 and stats["inconsistent"] == 1 and stats["scored"] == 4
    assert stats["position_consistency"] == pytest.approx(2 / 3)  # a, b, c: b and c agree


# ---------------------------------------------------------------- power and the minimum detectable effect

def test_minimum_detectable_effect_and_items_needed_match_the_hand_computation():
    from evalhub.stats.power import items_needed, minimum_detectable_effect

    z = 1.959964 + 0.841621  # z_{0.975} + z_{0.80}
    # 40 items, 40% ties: z * sqrt(0.6 / 160) = 2.801585 * 0.0612372 = 0.171560
    assert minimum_detectable_effect(40, 0.4) == pytest.approx(z * math.sqrt(0.6 / 160), abs=1e-5)
    assert minimum_detectable_effect(40, 0.4) == pytest.approx(0.17156, abs=1e-4)
    assert minimum_detectable_effect(100, 0.0) == pytest.approx(2.801585 * 0.05, abs=1e-5)  # sqrt(1 / 400)
    assert minimum_detectable_effect(0) is None
    # n = z^2 (1 - t) / (4 effect^2) = 7.848879 * 0.7 / 0.01 = 549.42 -> 550
    assert items_needed(0.05, 0.3) == 550
    assert items_needed(0.1) == 197  # 7.848879 / 0.04 = 196.2 -> 197
    with pytest.raises(ValueError):
        items_needed(0.0)


def test_golden_plan_prints_and_writes_the_items_needed(tmp_path):
    out = tmp_path / "plan.json"
    result = subprocess.run([sys.executable, "-m", "evalhub", "golden", "plan", "--effect", "0.05", "--tie-rate", "0.3",
                             "--json", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("550 scored items")
    assert json.loads(out.read_text()) == {"items_needed": 550, "effect": 0.05, "tie_rate": 0.3, "power": 0.8,
                                           "alpha": 0.05}
    bad = subprocess.run([sys.executable, "-m", "evalhub", "golden", "plan", "--effect", "0.6", "--json",
                          str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: golden plan:") and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.json").exists()


def test_the_summary_reports_the_mde_of_its_scored_items():
    from evalhub.stats.pairwise import ItemOutcome, outcome_stats
    from evalhub.stats.power import minimum_detectable_effect

    outcomes = [ItemOutcome(str(k), v, 1, 1) for k, v in enumerate(["win"] * 20 + ["tie"] * 10 + ["loss"] * 10)]
    stats = outcome_stats(outcomes, resamples=200, by_tag=False)
    assert stats["mde"] == pytest.approx(minimum_detectable_effect(40, 10 / 40))
    assert outcome_stats([ItemOutcome("a", "tie", 1, 1)] * 3, resamples=200, by_tag=False)["mde"] is None


# ---------------------------------------------------------------- clusters

def test_the_clustered_test_matches_the_hand_computed_standard_error():
    from scipy.stats import norm

    from evalhub.stats.pairwise import clustered_test

    # mean 0.625; deviations 0.375, 0.375, -0.625, -0.125; cluster sums a 0.75, b -0.625, alone -0.125;
    # SE = sqrt(0.5625 + 0.390625 + 0.015625) / 4 = 0.246063; z = 0.125 / 0.246063 = 0.508001
    p = clustered_test([1.0, 1.0, 0.0, 0.5], ["a", "a", "b", None])
    assert p == pytest.approx(2 * norm.sf(0.125 / 0.2460627), abs=1e-6)
    assert p == pytest.approx(0.6114, abs=1e-3)


def test_clusters_widen_the_interval_and_are_counted():
    from evalhub.stats.pairwise import ItemOutcome, bootstrap_ci, count_clusters, outcome_stats

    # Ten sources of four items each; each source's items share one verdict.
    scores = [1.0] * 16 + [0.0] * 12 + [0.5] * 12
    clusters = [f"s{k // 4}" for k in range(40)]
    alone = bootstrap_ci(scores, resamples=2000)
    together = bootstrap_ci(scores, resamples=2000, clusters=clusters)
    assert together[1] - together[0] > 1.5 * (alone[1] - alone[0])
    assert count_clusters(clusters) == 10 and count_clusters([None, None]) is None
    assert count_clusters(["a", None, "a", None]) == 3  # one shared cluster, two items alone
    verdict = {1.0: "win", 0.0: "loss", 0.5: "tie"}
    stats = outcome_stats([ItemOutcome(str(k), verdict[s], 1, 1, cluster=c)
                           for k, (s, c) in enumerate(zip(scores, clusters))], resamples=2000, by_tag=False)
    assert stats["clusters"] == 10 and stats["win_rate_ci"] == pytest.approx(together)


def test_golden_items_carry_a_cluster(tmp_path):
    from evalhub.golden import load_golden

    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "a", "instruction": "q", "output": "x", "cluster": "doc-1"}\n'
                    '{"id": "b", "instruction": "q2", "output": "y"}\n')
    assert [item.cluster for item in load_golden(path)] == ["doc-1", None]
    path.write_text('{"id": "a", "instruction": "q", "output": "x", "cluster": 3}\n')
    with pytest.raises(UserError, match=r"g.jsonl:1: field .cluster. must be a non-empty string"):
        load_golden(path)


# ---------------------------------------------------------------- the anytime-valid sequence

def test_hedged_capital_matches_the_hand_computation():
    from evalhub.stats.sequential import hedged_capital

    # m = 0.25, alpha = 0.05. lambda_1 = sqrt(2 ln 40 / (0.25 * 1 * ln 2)) = 6.525 and lambda_2 = 3.665 are
    # both truncated: upward to 0.5 / 0.25 = 2, downward to 0.5 / 0.75 = 2/3.
    # x1 = 1: K+ = 1 + 2 * 0.75 = 2.5, K- = 1 - (2/3) * 0.75 = 0.5
    # x2 = 0.5: K+ = 2.5 * (1 + 2 * 0.25) = 3.75, K- = 0.5 * (1 - (2/3) * 0.25) = 0.41667; hedged 2.08333
    capital = hedged_capital([1.0, 0.5], 0.25)
    assert capital[:, 0] == pytest.approx([1.5, 25 / 12])


def test_plug_in_bets_match_the_hand_computation():
    from evalhub.stats.sequential import plug_in_bets

    # x = 1, 0: sigma^2_0 = 1/4; mu_1 = (0.5 + 1) / 2 = 0.75 and sigma^2_1 = (0.25 + (1 - 0.5)^2) / 2 = 0.25
    bets = plug_in_bets([1.0, 0.0], 0.05)
    assert bets == pytest.approx([math.sqrt(2 * math.log(40) / (0.25 * 1 * math.log(2))),
                                  math.sqrt(2 * math.log(40) / (0.25 * 2 * math.log(3)))])


def test_the_confidence_sequence_shrinks_around_the_mean_and_decides_thresholds():
    from evalhub.stats.sequential import confidence_sequence, decided

    assert confidence_sequence([]) == (0.0, 1.0, 0) or confidence_sequence([]).n == 0
    ties = confidence_sequence([0.5] * 40)
    assert ties.lower < 0.5 < ties.upper and ties.upper - ties.lower < 0.2
    clear = confidence_sequence([1.0] * 30)
    assert clear.lower > 0.75 and decided(clear, [0.55, 0.5])
    assert not decided(confidence_sequence([1.0, 0.0] * 5), [0.5])
    assert decided(confidence_sequence([0.0] * 30), [0.5])  # decided as a fail: the upper end is below


def test_the_gate_decides_a_sequential_run_on_its_anytime_valid_interval():
    def run(interval, stopped_early=True):
        summary = _summary(win_rate=0.9, win_rate_ci=(0.8, 0.95), position_consistency=1.0, inconsistent=0,
                           wins=36, ties=4)
        summary.judge_stats.sequential = SequentialInfo(stopped_early=stopped_early, items_judged=40, items_total=200,
                                                        interval=interval, batch=20, seed=0)
        return evaluate_gate(summary, GateThresholds(min_win_rate=0.55, min_win_rate_lower=0.5))

    passed = run((0.62, 1.0))
    assert passed.passed and "anytime-valid interval [0.620, 1.000] after 40 of 200 items" in passed.checks[1].detail
    assert passed.checks[1].value == 0.62
    # Every item judged and the sequence never cleared 0.5: the bootstrap's 0.8 may not be used after looking.
    assert not run((0.45, 1.0), stopped_early=False).passed


def test_sequential_needs_a_win_rate_threshold():
    with pytest.raises(UserError, match="--sequential stops judging once the gate's win-rate thresholds"):
        build(__import__("evalhub.contracts", fromlist=["CompareRequest"]).CompareRequest, base="a", tuned="b",
              sequential=True, thresholds=GateThresholds(max_forgetting=0.02))


def test_sequential_judging_follows_one_seeded_order_and_stops_once_decided(tmp_path):
    from evalhub.contracts import CompareRequest
    from evalhub.judge import JudgeOptions, judge_pairs
    from evalhub.records import Generation, GoldenItem
    from evalhub.stages import RunContext
    from evalhub.stages.judgments import judge_sequentially

    items = [GoldenItem(id=f"i{k:03d}", instruction=f"Translate {k}.", output=f"In Zorvish: word{k}-ka.")
             for k in range(100)]
    tuned = {i.id: Generation(i.id, i.prompt, i.output) for i in items}
    base = {i.id: Generation(i.id, i.prompt, "I do not know.") for i in items}
    request = CompareRequest(base="b", tuned="t", sequential=True, sequential_batch=10,
                             thresholds=GateThresholds(min_win_rate_lower=0.5))
    options = JudgeOptions(progress=False, cache_path=str(tmp_path / "cache.jsonl"))

    def attempt():
        looks: list[list[str]] = []

        def judge(prefix, options):
            looks.append([i.id for i in prefix])
            return judge_pairs(prefix, base, tuned, "reference", options)

        context = RunContext(request=request, golden={}, items=items, judge="reference", say=lambda _: None)
        outcome, info = judge_sequentially(context, judge, options)
        return looks, outcome, info

    looks, outcome, info = attempt()
    assert info.stopped_early and info.items_judged == len(looks[-1]) < 100 and info.items_total == 100
    assert info.interval[0] >= 0.5 and outcome.stats["n"] == info.items_judged
    assert looks[0] != [i.id for i in items[:10]]  # a seeded random order, not the file's
    assert all(later[:len(earlier)] == earlier for earlier, later in zip(looks, looks[1:]))  # each look extends
    again, _, _ = attempt()  # a resumed run: the same order, its earlier looks answered by the judge's cache
    assert again == looks


# ---------------------------------------------------------------- end to end on the toy world

def _always_first(body):
    return json.dumps({"verdict": "A", "reason": "the first answer"})


def test_compare_with_an_always_first_judge_fails_the_non_inferiority_gate(toy_world, toy_manifest, toy_adapter,
                                                                          tmp_path):
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "EVALHUB_CACHE": str(tmp_path / "cache")}
    db = tmp_path / "s.duckdb"
    with FakeOpenAI(reply=_always_first) as server:
        result = subprocess.run(
            [sys.executable, "-m", "evalhub", "compare", str(toy_world / "base"), str(toy_adapter), "--golden",
             str(toy_world / toy_manifest["golden"]), "--judge", "openai:first", "--judge-base-url", server.base_url,
             "--backend", "hf", "--max-new-tokens", "24", "--db", str(db), "--report-dir", str(tmp_path / "reports"),
             "--json", str(tmp_path / "s.json"), "--gate", "--min-win-rate-lower", "0.45"],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert result.returncode == 1, result.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    stats = summary["judge_stats"]
    assert stats["win_rate"] == 0.5 and stats["position_consistency"] == 0.0
    assert stats["inconsistent"] == stats["scored"] - (stats["identical_pairs"] or 0) > 0
    assert stats["mde"] is None  # every scored item a tie: nothing is visible
    check = summary["gate"]["checks"][0]
    assert not check["passed"] and check["detail"].startswith("position consistency 0.00 < 0.60")
    report = next((tmp_path / "reports").glob("*.md")).read_text()
    assert "order-flipped" not in report and "flipped with the answer order" in report
    # The stored run gates the same way, and the floor is the flag's to lower.
    gate = [sys.executable, "-m", "evalhub", "gate", "latest", "--db", str(db), "--min-win-rate-lower", "0.45"]
    assert subprocess.run(gate, capture_output=True, text=True, cwd=tmp_path).returncode == 1
    assert subprocess.run(gate + ["--min-position-consistency", "0"], capture_output=True, text=True,
                          cwd=tmp_path).returncode == 0


def test_compare_sequential_stops_early_on_a_clear_case_with_the_full_verdict(toy_world, toy_manifest, toy_adapter,
                                                                             tmp_path):
    def compare(root: Path, *extra):
        root.mkdir()
        return subprocess.run(
            [sys.executable, "-m", "evalhub", "compare", str(toy_world / "base"), str(toy_adapter), "--golden",
             str(toy_world / toy_manifest["golden"]), "--judge", "reference", "--backend", "hf", "--max-new-tokens",
             "24", "--db", str(root / "s.duckdb"), "--report-dir", str(root / "reports"), "--json",
             str(root / "s.json"), "--gate", "--min-win-rate-lower", "0.5", *extra],
            capture_output=True, text=True, cwd=root, timeout=900)

    sequential = compare(tmp_path / "seq", "--sequential", "--sequential-batch", "10")
    assert sequential.returncode == 0, sequential.stderr[-3000:]
    stats = json.loads((tmp_path / "seq" / "s.json").read_text())["judge_stats"]
    seq = stats["sequential"]
    assert seq["stopped_early"] and seq["items_judged"] < seq["items_total"] == 100 and seq["batch"] == 10
    assert stats["n"] == seq["items_judged"] and seq["interval"][0] >= 0.5
    assert "judging stopped early" in next((tmp_path / "seq" / "reports").glob("*.md")).read_text()
    full = compare(tmp_path / "full")
    assert full.returncode == 0  # judging every item gives the same verdict
    assert "sequential" not in json.loads((tmp_path / "full" / "s.json").read_text())["judge_stats"]


def test_an_arena_pair_whose_judge_follows_the_order_is_never_significant():
    from evalhub.arena_stages import summary
    from evalhub.contracts import ArenaRequest

    request = ArenaRequest(models=("m-a", "m-b"), golden=("g.jsonl",))
    rows = [{"golden_file": "g.jsonl", "item_id": f"i{k}", "a_position": pos, "verdict": verdict, "is_canary": False}
            for k in range(40) for pos, verdict in (("A", "win"), ("B", "win" if k < 20 else "loss"))]
    stats = {"n": 40, "scored": 40, "wins": 20, "losses": 0, "ties": 20, "win_rate": 0.75, "win_rate_ci": (0.65, 0.85),
             "p_value": 1.9e-6, "position_consistency": 0.5, "inconsistent": 20, "mde": 0.16, "judge_calls": 80,
             "parse_failures": 0, "cost_usd": None, "unscored": 0}
    result = summary("arena-1", request, "openai:first", {("m-a", "m-b"): {"judgments": rows, "stats": stats}})
    pair = result.pairs[0]
    assert not pair.significant and pair.p_value < 0.05
    assert pair.uninformative.startswith("position consistency 0.50 < 0.60")
    assert pair.inconsistent == 20 and pair.mde == 0.16
    assert any(w.startswith("m-a vs m-b: position consistency 0.50 < 0.60") for w in result.warnings)
