"""The stage interface from outside: a per-answer metric through `evalhub compare` (its summary part, its rows
in the generic item_metrics table), and command-line flags generated once from the contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import typer
from typer.testing import CliRunner

from evalhub.cli._options import contract_options
from evalhub.contracts import DecodingSettings, GateThresholds
from tests.fake_openai import FakeOpenAI, Response


class ModelServer(FakeOpenAI):
    """A served baseline and candidate (the model list names them)."""

    def _models(self) -> Response:
        return Response(body={"object": "list", "data": [{"id": m, "object": "model"} for m in ("m-base", "m-tuned")]})


def _model(body):
    """A served baseline that refuses and a candidate that answers in three words."""
    return "I'm sorry, I cannot." if body["model"] == "m-base" else "cat-ka sees-ri dog-ka"


def test_answer_metrics_are_compared_item_by_item_and_stored_per_item(tmp_path):
    golden = tmp_path / "g.jsonl"
    golden.write_text("".join(json.dumps({"id": f"q{k}", "instruction": f"Translate {k}.", "output": "x"}) + "\n"
                              for k in range(6)))
    db, summary_path = tmp_path / "s.duckdb", tmp_path / "s.json"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "EVALHUB_CACHE": str(tmp_path / "cache")}
    with ModelServer(reply=_model) as server:
        result = subprocess.run(
            [sys.executable, "-m", "evalhub", "compare", "m-base", "m-tuned", "--backend", "openai", "--base-url",
             server.base_url, "--golden", str(golden), "--judge", "reference", "--answer-metric", "words",
             "--answer-metric", "refusal", "--db", str(db), "--json", str(summary_path), "--report-dir",
             str(tmp_path / "reports")], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(summary_path.read_text())["answer_metrics"]
    # "I'm sorry, I cannot." is 4 words and a refusal; "cat-ka sees-ri dog-ka" 3 words and not.
    assert metrics["words"]["n"] == 6 and (metrics["words"]["base"], metrics["words"]["tuned"]) == (4.0, 3.0)
    assert metrics["words"]["delta"] == -1.0
    assert (metrics["refusal"]["base"], metrics["refusal"]["tuned"], metrics["refusal"]["delta"]) == (1.0, 0.0, -1.0)
    assert metrics["refusal"]["p_value"] < 0.05
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT name, role, count(*), sum(value) FROM item_metrics GROUP BY name, role "
                           "ORDER BY name, role").fetchall()
    assert rows == [("refusal", "base", 6, 6.0), ("refusal", "tuned", 6, 0.0), ("words", "base", 6, 24.0),
                    ("words", "tuned", 6, 18.0)]
    report = next((tmp_path / "reports").glob("*.md")).read_text()
    assert "## Answer metrics" in report and "| refusal | 6 | 1.000 | 0.000 |" in report


def test_an_unknown_answer_metric_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "evalhub", "compare", "a", "b", "--backend", "openai", "--golden",
                             "missing.jsonl", "--answer-metric", "toxicity", "--judge", "reference"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--answer-metric toxicity: no such answer metric; choose from words, refusal" in result.stderr


def _command():
    app = typer.Typer()
    seen = {}

    @app.command()
    @contract_options(decoding=DecodingSettings, thresholds=GateThresholds)
    def run(name: str, decoding: dict, thresholds: dict) -> None:
        seen.update(name=name, decoding=decoding, thresholds=thresholds)

    return app, seen


def test_flags_come_from_the_contract_fields_once():
    app, seen = _command()
    runner = CliRunner()
    help_text = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for flag in ("--no-chat-template", "--max-new-tokens", "--min-win-rate-lower", "--min-position-consistency",
                 "--min-scored"):
        assert flag in help_text
    result = runner.invoke(app, ["x", "--no-chat-template", "--max-new-tokens", "12", "--min-win-rate", "0.55"])
    assert result.exit_code == 0, result.output
    # Only what was given is passed on: the contract's defaults stand for the rest.
    assert seen == {"name": "x", "decoding": {"chat_template": False, "max_new_tokens": 12},
                    "thresholds": {"min_win_rate": 0.55}}
