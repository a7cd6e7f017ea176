"""The gate: thresholds from flags and evalhub.toml, exit codes 0/1/2, JUnit XML and the step summary."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from evalhub.contracts import RunSummary
from evalhub.errors import UserError
from evalhub.gate import GateThresholds, evaluate_gate, load_thresholds
from evalhub.records import ModelRef, RunRecord
from evalhub.store import save_run

SUMMARY_JSON = {
    "run_id": "r1", "base": "b", "tuned": "t", "judge": "reference", "golden": ["g.jsonl"],
    "judge_stats": {"n": 100, "wins": 60, "losses": 30, "ties": 10, "scored": 100, "unscored": 0, "win_rate": 0.65,
                    "win_rate_ci": [0.56, 0.74], "p_value": 0.002, "parse_failures": 4, "position_consistency": 0.9,
                    "lc_win_rate": 0.63, "canary_accuracy": 1.0, "judge_calls": 200, "cost_usd": 0.0},
    "perplexity": {"general": {"base": 10.0, "tuned": 10.8, "delta_pct": 8.0, "bpb_base": 1.0, "bpb_tuned": 1.1}},
    "benchmarks": {"a": {"base": 0.9, "tuned": 0.85, "delta": -0.05, "ci": [-0.08, -0.02], "p_value": 0.01, "forgetting": True},
                   "b": {"base": 0.5, "tuned": 0.4, "delta": -0.10, "ci": [-0.3, 0.1], "p_value": 0.4, "forgetting": False}},
}
SUMMARY = RunSummary.model_validate(SUMMARY_JSON)


def test_each_threshold_passes_and_fails_at_its_boundary():
    passing = GateThresholds(min_win_rate=0.65, min_win_rate_lower=0.5, max_forgetting=0.05, max_ppl_increase=8.0,
                             max_parse_failure_rate=0.02, min_position_consistency=0.9)
    result = evaluate_gate(SUMMARY, passing)
    assert result.passed and len(result.checks) == 6
    values = {c.name: c.value for c in result.checks}
    # Only the significant drop (task a) counts as forgetting; task b's larger but noisy drop does not.
    assert values["max_forgetting"] == pytest.approx(0.05)
    assert values["max_parse_failure_rate"] == pytest.approx(4 / 200)
    failing = GateThresholds(min_win_rate=0.7, max_forgetting=0.04, max_ppl_increase=5.0)
    result = evaluate_gate(SUMMARY, failing)
    assert not result.passed
    assert [c.passed for c in result.checks] == [False, False, False]


def test_a_run_that_scored_nothing_fails_each_judge_check_saying_so():
    stats = {**SUMMARY_JSON["judge_stats"], "wins": 0, "losses": 0, "ties": 0, "scored": 0, "unscored": 100,
             "win_rate": None, "win_rate_ci": None, "position_consistency": None, "lc_win_rate": None}
    summary = RunSummary.model_validate({**SUMMARY_JSON, "judge_stats": stats})
    result = evaluate_gate(summary, GateThresholds(min_win_rate=0.0, min_win_rate_lower=0.0,
                                                   min_position_consistency=0.0, max_ppl_increase=10.0))
    assert not result.passed
    assert [(c.name, c.value, c.passed) for c in result.checks] == [
        ("min_win_rate", None, False), ("min_win_rate_lower", None, False), ("max_ppl_increase", 8.0, True),
        ("min_position_consistency", None, False)]
    assert result.checks[0].detail == "0 of 100 items scored"


def test_a_benchmark_without_items_fails_the_forgetting_check():
    benchmarks = {"empty": {"base": None, "tuned": None, "delta": None, "ci": None, "p_value": None, "forgetting": False}}
    summary = RunSummary.model_validate({**SUMMARY_JSON, "benchmarks": benchmarks})
    check = evaluate_gate(summary, GateThresholds(max_forgetting=0.5)).checks[0]
    assert not check.passed and check.value is None and "empty" in check.detail


@pytest.mark.parametrize("values", [{"min_win_rate": 7}, {"min_win_rate": float("nan")}, {"max_forgetting": -0.1},
                                    {"max_ppl_increase": float("inf")}])
def test_thresholds_out_of_range_are_bad_input(values):
    with pytest.raises(UserError, match="--"):
        load_thresholds(None, **values)


def test_threshold_on_a_stage_the_run_lacks_is_bad_input():
    summary = SUMMARY.model_copy(update={"benchmarks": None})
    with pytest.raises(UserError, match="--tasks"):
        evaluate_gate(summary, GateThresholds(max_forgetting=0.01))
    with pytest.raises(UserError, match="no gate thresholds"):
        evaluate_gate(SUMMARY, GateThresholds())


def test_toml_thresholds_are_overridden_by_flags(tmp_path):
    config = tmp_path / "evalhub.toml"
    config.write_text("[gate]\nmin-win-rate = 0.6\nmax_ppl_increase = 10\n")
    thresholds = load_thresholds(config, min_win_rate=0.7, max_forgetting=None)
    assert thresholds == GateThresholds(min_win_rate=0.7, max_ppl_increase=10.0)
    config.write_text("[gate]\nmin_winrate = 0.6\n")
    with pytest.raises(UserError, match="unknown gate threshold"):
        load_thresholds(config)


def _store(tmp_path):
    db = tmp_path / "gate.duckdb"
    save_run(RunRecord(run_id="r1", kind="compare", created_at="2026-01-01 00:00:00",
                       base=ModelRef("mb", "base", "b"), tuned=ModelRef("mt", "adapter", "t"),
                       config={}, summary=SUMMARY_JSON, judge="reference"), db)
    return db


def _gate(db, *args, cwd):
    return subprocess.run([sys.executable, "-m", "evalhub", "gate", "latest", "--db", str(db), *args],
                          capture_output=True, text=True, cwd=cwd)


def test_gate_command_exit_codes_junit_and_step_summary(tmp_path):
    db = _store(tmp_path)
    junit, step_summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    ok = _gate(db, "--min-win-rate", "0.6", "--junit", str(junit), "--summary", str(step_summary), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    failed = _gate(db, "--min-win-rate", "0.6", "--max-ppl-increase", "5", "--junit", str(junit), cwd=tmp_path)
    assert failed.returncode == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"min_win_rate", "max_ppl_increase"}
    assert cases["max_ppl_increase"].find("failure") is not None and cases["min_win_rate"].find("failure") is None
    assert "| min_win_rate |" in step_summary.read_text()
    usage = _gate(db, cwd=tmp_path)  # no thresholds at all
    assert usage.returncode == 2 and usage.stderr.strip().startswith("error:")
    assert len(usage.stderr.strip().splitlines()) == 1
    (tmp_path / "evalhub.toml").write_text("[gate]\nmin_win_rate = 0.9\n")
    assert _gate(db, cwd=tmp_path).returncode == 1  # thresholds from ./evalhub.toml


def test_a_panels_parse_failure_rate_is_pooled_over_its_judges_calls():
    # Six items, two orders: each judge made 12 calls. The good judge read all 12 replies, the garbage judge
    # none: the panel's rate is 12 unreadable of 24 calls = 0.5, not 12 / (2 x 6) = 1.
    def judge(failures):
        return {"n": 6, "wins": 0, "losses": 0, "ties": 6 if not failures else 0, "scored": 6 if not failures else 0,
                "unscored": 0 if not failures else 6, "parse_failures": failures, "judge_calls": 12}

    panel = {"n": 6, "wins": 0, "losses": 0, "ties": 6, "scored": 6, "unscored": 0, "parse_failures": 12,
             "judge_calls": 24, "judges": {"openai:good": judge(0), "openai:garbage": judge(12)}}
    summary = RunSummary.model_validate({**SUMMARY_JSON, "judge_stats": panel})
    stats = summary.judge_stats
    assert stats.parse_failure_rate() == pytest.approx(0.5)
    assert {name: one.parse_failure_rate() for name, one in stats.judges.items()} == \
        {"openai:good": 0.0, "openai:garbage": 1.0}
    check = evaluate_gate(summary, GateThresholds(max_parse_failure_rate=0.05)).checks[0]
    assert (check.value, check.passed) == (pytest.approx(0.5), False)
    assert "openai:good 0/12" in check.detail and "openai:garbage 12/12" in check.detail
    assert evaluate_gate(summary, GateThresholds(max_parse_failure_rate=0.5)).checks[0].passed
    from evalhub.report.markdown import judging_markdown

    table = "\n".join(judging_markdown(stats))
    assert "| 12 (0.500, pooled) |" in table and "| 0 (0.000) |" in table and "| 12 (1.000) |" in table
