"""Reports escape model output and carry every stage's numbers."""

from __future__ import annotations

from evalhub.report import clearest_losses, write_report
from tests.test_gate import SUMMARY


def test_html_report_escapes_model_output_and_embeds_figures(tmp_path):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    judgments = [{"golden_file": "g.jsonl", "item_id": "i1", "tuned_position": pos, "status": "ok", "verdict": "loss",
                  "reason": "base is right", "is_canary": False} for pos in ("A", "B")]
    judgments += [{"golden_file": "g.jsonl", "item_id": "i2", "tuned_position": "A", "status": "ok", "verdict": "loss"},
                  {"golden_file": "g.jsonl", "item_id": "i2", "tuned_position": "B", "status": "ok", "verdict": "tie"}]
    answers = {f"g.jsonl::{i}": {"instruction": "q", "ideal": "a", "base": "a", "tuned": hostile} for i in ("i1", "i2")}
    losses = clearest_losses(judgments, answers)
    assert [loss["key"] for loss in losses] == ["g.jsonl::i1"]  # i2 was lost in one order only
    summary = {**SUMMARY, "gate": {"passed": False, "checks": [
        {"name": "min_win_rate", "threshold": 0.7, "value": 0.65, "passed": False}]}}
    markdown, html = write_report(summary, {"versions": {"evalhub": "0"}}, losses, tmp_path)
    page = html.read_text()
    assert "<script>alert" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert" in page
    assert page.count("data:image/png;base64,") == 4  # win rate, telemetry, forgetting, perplexity
    text = markdown.read_text()
    assert "0.650" in text and "FAILED" in text and "| a | 0.900 | 0.850 | -0.050 |" in text
