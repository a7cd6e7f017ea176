"""Reports escape model output and carry every stage's numbers."""

from __future__ import annotations

from evalhub.report import clearest_losses, write_report
from evalhub.contracts import RunSummary
from tests.test_gate import SUMMARY, SUMMARY_JSON


def test_html_report_escapes_model_output_and_embeds_figures(tmp_path):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    judgments = [{"golden_file": "g.jsonl", "item_id": "i1", "tuned_position": pos, "status": "ok", "verdict": "loss",
                  "reason": "base is right", "is_canary": False} for pos in ("A", "B")]
    judgments += [{"golden_file": "g.jsonl", "item_id": "i2", "tuned_position": "A", "status": "ok", "verdict": "loss"},
                  {"golden_file": "g.jsonl", "item_id": "i2", "tuned_position": "B", "status": "ok", "verdict": "tie"}]
    answers = {f"g.jsonl::{i}": {"instruction": "q", "ideal": "a", "base": "a", "tuned": hostile} for i in ("i1", "i2")}
    losses = clearest_losses(judgments, answers)
    assert [loss["key"] for loss in losses] == ["g.jsonl::i1"]  # i2 was lost in one order only
    summary = RunSummary.model_validate({**SUMMARY_JSON, "gate": {"passed": False, "checks": [
        {"name": "min_win_rate", "threshold": 0.7, "value": 0.65, "passed": False}]}})
    markdown, html = write_report(summary, {"versions": {"evalhub": "0"}}, losses, tmp_path)
    page = html.read_text()
    assert "<script>alert" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert" in page
    assert page.count("data:image/png;base64,") == 4  # win rate, telemetry, forgetting, perplexity
    text = markdown.read_text()
    assert "0.650" in text and "FAILED" in text and "| a | 0.900 | 0.850 | -0.050 |" in text


def test_reports_of_a_run_that_scored_nothing_show_dashes(tmp_path):
    stats = {**SUMMARY_JSON["judge_stats"], "wins": 0, "losses": 0, "ties": 0, "scored": 0, "unscored": 100,
             "win_rate": None, "win_rate_ci": None, "p_value": None, "position_consistency": None, "lc_win_rate": None}
    benchmarks = {"empty": {"base": None, "tuned": None, "delta": None, "ci": None, "p_value": None, "forgetting": False}}
    summary = SUMMARY.model_copy(update={"judge_stats": SUMMARY.judge_stats.model_copy(update=stats),
                                         "benchmarks": RunSummary.model_validate({**SUMMARY_JSON, "benchmarks": benchmarks}).benchmarks,
                                         "warnings": ["no item could be scored"]})
    markdown, html = write_report(summary, {}, [], tmp_path)
    text = markdown.read_text()
    assert "**–**" in text and "0 of 100 items scored" in text and "| empty | – | – | – | –––" in text
    assert "warning**: no item could be scored" in text
    page = html.read_text()
    assert "Win rate of tuned over base: –" in page and page.count("data:image/png;base64,") == 2  # telemetry, perplexity
