"""The run page's Training tab with evaluation inside training: the golden win rate per step with its CI band,
each task's accuracy per step, failed evaluations and the checkpoint kept, read from the adapter's training.json
as the store holds it. The shaping (evalhub/app/training_chart.py) is pinned on a hand-written record; the page
through Streamlit's AppTest on a store written by the real store functions; a record without them changes
nothing."""

from __future__ import annotations

import json

import pytest

from evalhub.app.text import md_literal
from evalhub.app.training_chart import eval_curves, kept_caption
from tests.test_store import _run  # a compare run whose tuned adapter's hash is "abc"

# As trainers/_common.py writes it when --eval-golden and --eval-tasks both ran: the tasks' accuracies copied
# onto the golden steps, a judge failure at step 40, a task failure at step 60, step 0 scored by the tasks only.
RECORD = {
    "method": "sft", "adapter_sha256": "abc",
    "golden_eval": {"judge": "reference", "golden": "toy_golden.jsonl", "items": ["a", "b", "c", "d"], "every": 20,
                    "steps": [{"step": 20, "win_rate": 0.25, "win_rate_lower": 0.0, "win_rate_upper": 0.625,
                               "parse_failures": 0, "wins": 1, "losses": 3, "ties": 0, "scored": 4, "n": 4,
                               "acc_arc_easy": 0.5, "acc_hellaswag": 0.75},
                              {"step": 40, "eval_error": "the judge's server refused the connection"},
                              {"step": 60, "win_rate": 0.875, "win_rate_lower": None, "win_rate_upper": None,
                               "parse_failures": 1, "wins": 3, "losses": 0, "ties": 1, "scored": 4, "n": 4},
                              {"step": 80, "win_rate": 0.75, "win_rate_lower": 0.5, "win_rate_upper": 1.0,
                               "parse_failures": 0, "wins": 3, "losses": 1, "ties": 0, "scored": 4, "n": 4,
                               "acc_arc_easy": 0.25, "acc_hellaswag": 0.5}]},
    "task_eval": {"tasks": ["arc_easy", "hellaswag"], "limit": 4, "every": 20,
                  "steps": [{"step": 0, "acc_arc_easy": 0.75, "acc_hellaswag": 0.75},
                            {"step": 20, "acc_arc_easy": 0.5, "acc_hellaswag": 0.75},
                            {"step": 60, "tasks_error": "dataset not found"},
                            {"step": 80, "acc_arc_easy": 0.25, "acc_hellaswag": 0.5}]},
    "selection": {"by": "win_rate", "step": 60, "value": 0.875},
}
CURVE = [{"step": step, "split": split, "loss": loss} for step, train, val in
         [(20, 2.5, 2.6), (40, 2.0, 2.2), (60, 1.5, 1.9), (80, 1.0, 2.0)] for split, loss in (("train", train), ("eval", val))]


def test_the_series_of_a_hand_written_record():
    curves = eval_curves(RECORD)
    assert curves.win_rate == [
        {"step": 20, "win_rate": 0.25, "win_rate_lower": 0.0, "win_rate_upper": 0.625},
        {"step": 60, "win_rate": 0.875, "win_rate_lower": None, "win_rate_upper": None},  # no CI: no band there
        {"step": 80, "win_rate": 0.75, "win_rate_lower": 0.5, "win_rate_upper": 1.0}]
    # Each (task, step) once, though steps 20 and 80 carry it in both entries; step 0 from the tasks alone.
    assert curves.accuracy == [{"step": s, "task": t, "accuracy": a} for t, s, a in [
        ("arc_easy", 0, 0.75), ("arc_easy", 20, 0.5), ("arc_easy", 80, 0.25),
        ("hellaswag", 0, 0.75), ("hellaswag", 20, 0.75), ("hellaswag", 80, 0.5)]]
    assert curves.failures == ["step 40: judge failed (the judge's server refused the connection)",
                               "step 60: tasks failed (dataset not found)"]
    assert curves.kept == {"by": "win_rate", "step": 60, "value": 0.875}
    assert kept_caption(curves.kept) == "kept: step 60 (by win_rate, value 0.875)"
    assert not curves.empty


def test_a_record_without_evaluations_gives_nothing_but_its_kept_step():
    for record in (None, {}, {"seed": 0}, {"golden_eval": {"steps": "?"}, "selection": {"by": "loss", "step": None}}):
        curves = eval_curves(record)
        assert curves.empty and curves.kept is None and kept_caption(curves.kept) is None
    # A validation-loss run: its kept step, no evaluation series; a value the trainer did not know is left out.
    loss = eval_curves({"selection": {"by": "loss", "step": 30, "value": 2.21349}})
    assert (loss.win_rate, loss.accuracy, loss.failures) == ([], [], [])
    assert kept_caption(loss.kept) == "kept: step 30 (by loss, value 2.213)"
    assert kept_caption(eval_curves({"selection": {"by": "loss", "step": 30}}).kept) == "kept: step 30 (by loss)"
    # An all-failed evaluation: no series, the failure listed.
    failed = eval_curves({"golden_eval": {"steps": [{"step": 20, "eval_error": "budget spent"}]}})
    assert failed.win_rate == [] and failed.failures == ["step 20: judge failed (budget spent)"]


def test_the_run_detail_carries_the_adapters_training_record(store):
    from evalhub.store import read_run, save_run, save_training_run

    save_run(_run("run-1"), store)
    assert read_run("run-1", store).training_record is None  # the adapter's training was not recorded
    save_training_run("abc", "/adapters/a", "sft", RECORD, CURVE, store)
    detail = read_run("run-1", store)
    assert detail.training_record == RECORD and detail.training_method == "sft"


# ---------------------------------------------------------------- the page, through Streamlit's AppTest

def _training_tab(monkeypatch, db, run_id: str):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    monkeypatch.setenv("EVALHUB_DB", str(db))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.sidebar.radio(key="page").set_value("Run details").run()
    at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _chart_layers(at) -> list[list[tuple[dict, list[dict]]]]:
    """Each chart drawn as its layers: (the layer's spec, the rows of its data set)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    charts = []
    for chart in at.get("vega_lite_chart"):
        data = {d.name: convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records") for d in chart.proto.datasets}
        spec = json.loads(chart.proto.spec)
        # A layer without data of its own draws the chart's (a layered chart of one layer puts it on top).
        charts.append([(layer, data[(layer.get("data") or spec["data"])["name"]]) for layer in spec.get("layer", [spec])])
    return charts


def _mark(layer: dict) -> str:
    return layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]


def _y_field(layer: dict) -> str | None:
    return layer.get("encoding", {}).get("y", {}).get("field")


def test_the_training_tab_plots_win_rate_accuracy_and_the_kept_step(monkeypatch, tmp_path):
    from evalhub.store import save_run, save_training_run

    db = tmp_path / "s.duckdb"
    save_run(_run("run-1"), db)
    save_training_run("abc", "/adapters/a", "sft", RECORD, CURVE, db)
    at = _training_tab(monkeypatch, db, "run-1")
    charts = _chart_layers(at)
    fields = [{_y_field(layer) for layer, _ in chart} for chart in charts]
    loss, win_rate, accuracy = (next(c for c, f in zip(charts, fields) if name in f)
                                for name in ("loss", "win_rate", "accuracy"))
    line = next(rows for layer, rows in win_rate if _mark(layer) == "line")
    assert [(r["step"], r["win_rate"]) for r in line] == [(20, 0.25), (60, 0.875), (80, 0.75)]
    band = next(rows for layer, rows in win_rate if _mark(layer) == "area")
    assert [(r["step"], r["win_rate_lower"], r["win_rate_upper"]) for r in band] == [(20, 0.0, 0.625), (80, 0.5, 1.0)]
    assert [rows for layer, rows in win_rate if _y_field(layer) == "half"] == [[{"half": 0.5}]]
    acc = next(rows for layer, rows in accuracy if _y_field(layer) == "accuracy")
    assert sorted((r["task"], r["step"], r["accuracy"]) for r in acc) == [
        ("arc_easy", 0, 0.75), ("arc_easy", 20, 0.5), ("arc_easy", 80, 0.25),
        ("hellaswag", 0, 0.75), ("hellaswag", 20, 0.75), ("hellaswag", 80, 0.5)]
    for chart in (loss, win_rate, accuracy):  # the kept checkpoint's vertical rule on every chart
        assert [rows[0]["step"] for layer, rows in chart if layer.get("encoding", {}).get("x") and
                _mark(layer) == "rule"] == [60]
    captions = [c.value for c in at.caption]
    assert md_literal("kept: step 60 (by win_rate, value 0.875)") in captions
    assert md_literal("Failed evaluations: step 40: judge failed (the judge's server refused the connection); "
                      "step 60: tasks failed (dataset not found)") in captions
    assert any("Loss while training the adapter (sft)" in c for c in captions)


def test_without_evaluations_the_training_tab_shows_the_loss_alone(monkeypatch, tmp_path):
    from evalhub.store import save_run, save_training_run

    db = tmp_path / "s.duckdb"
    save_run(_run("run-1"), db)
    save_training_run("abc", "/adapters/a", "sft", {"method": "sft", "seed": 0}, CURVE, db)
    at = _training_tab(monkeypatch, db, "run-1")
    charts = _chart_layers(at)
    assert [[_y_field(layer) for layer, _ in chart] for chart in charts] == [["loss"]]
    captions = [c.value for c in at.caption]
    assert any("Loss while training the adapter (sft)" in c for c in captions)
    assert not any(c.startswith(("kept", "Failed evaluations", "Win rate of the model")) for c in captions)
