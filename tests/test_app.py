"""The leaderboard app through Streamlit's AppTest, on a store filled by real compares of the toy world:
the demo's run (one golden set) and a second run over a hostile golden set and the toy set; on both engines
(the DuckDB file, and the same runs imported into a database on a real PostgreSQL server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HOSTILE_GOLDEN, REPO

APP = REPO / "app.py"


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def app_db(request, app_store) -> str:
    """The app's store on each engine: the DuckDB file, or its runs imported into a PostgreSQL database."""
    if request.param == "duckdb":
        return str(app_store["db"])
    from evalhub.store import import_runs

    url = request.getfixturevalue("pg_server").new_database()
    import_runs([app_store["db"]], url)
    return url


def _app(monkeypatch, db):
    from streamlit.testing.v1 import AppTest

    from evalhub.store import location

    # As `evalhub app` hands a store over: a URL's password travels in PGPASSWORD, never in EVALHUB_DB.
    for name, value in location(str(db)).child_env().items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _leaderboard(at):
    return next(df.value for df in at.dataframe if "win_rate" in df.value.columns)


def _open_run(at, run_id: str):
    at.sidebar.radio(key="page").set_value("Run details").run()
    at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at) -> list:
    return at.get("vega_lite_chart")


def test_leaderboard_numbers_equal_the_stored_summary(monkeypatch, app_store, app_db):
    at = _app(monkeypatch, app_db)
    at.toggle(key="every_run").set_value(True).run()
    demo = app_store["demo"]
    row = _leaderboard(at).set_index("run_id").loc[demo["run_id"]]
    stats = demo["judge_stats"]
    assert row["win_rate"] == pytest.approx(stats["win_rate"])
    assert [row["ci_lo"], row["ci_hi"]] == pytest.approx(stats["win_rate_ci"])
    assert (row["wins"], row["ties"], row["losses"]) == (stats["wins"], stats["ties"], stats["losses"])
    assert row["lc_win_rate"] == pytest.approx(stats["lc_win_rate"])
    for name, ppl in demo["perplexity"].items():
        assert row[f"ppl_delta_pct:{name}"] == pytest.approx(ppl["delta_pct"])
    drops = {task: -b["delta"] for task, b in demo["benchmarks"].items() if b["forgetting"]}
    assert row["largest_forgetting"] == ("none" if not drops else f"{max(drops, key=drops.get)} −{100 * max(drops.values()):.1f} pts")
    assert row["gate"] == ("–" if "gate" not in demo else "passed" if demo["gate"]["passed"] else "FAILED")
    assert row["tuned"] == Path(demo["tuned"]).name and row["base"] == Path(demo["base"]).name
    assert _charts(at), "the ranking chart is missing"


def test_a_run_over_two_golden_sets_gets_one_row_each_that_add_up(monkeypatch, app_store, app_db):
    at = _app(monkeypatch, app_db)
    multi = app_store["multi"]
    rows = _leaderboard(at)
    # The default view keeps the newest run per tuned model and golden set: the second compare replaced the demo.
    assert set(rows["run_id"]) == {multi["run_id"]}
    assert sorted(rows["golden_set"]) == sorted([app_store["hostile"].name, app_store["toy_golden"].name])
    stats = multi["judge_stats"]
    for column in ("wins", "ties", "losses"):
        assert rows[column].sum() == stats[column]
    for _, row in rows.iterrows():
        scored = row["wins"] + row["ties"] + row["losses"]
        assert row["win_rate"] == pytest.approx((row["wins"] + row["ties"] / 2) / scored)
        assert row["ci_lo"] <= row["win_rate"] <= row["ci_hi"]


def test_filters_by_golden_set_and_every_run(monkeypatch, app_store, app_db):
    at = _app(monkeypatch, app_db)
    toy = app_store["toy_golden"].name
    at.multiselect(key="filter_golden_set").set_value([toy]).run()
    assert list(_leaderboard(at)["golden_set"]) == [toy]
    at.toggle(key="every_run").set_value(True).run()
    rows = _leaderboard(at)
    assert set(rows["run_id"]) == {app_store["demo"]["run_id"], app_store["multi"]["run_id"]}
    assert set(rows["golden_set"]) == {toy}
    at.multiselect(key="filter_judge").set_value(["reference"]).run()
    at.multiselect(key="filter_base").set_value([Path(app_store["demo"]["base"]).name]).run()
    assert len(_leaderboard(at)) == 2


def test_ranking_puts_the_model_that_wins_more_on_top(monkeypatch, app_store, app_db):
    at = _app(monkeypatch, app_db)
    at.multiselect(key="filter_golden_set").set_value([app_store["toy_golden"].name]).run()
    ranking = next(df.value for df in at.dataframe if "rating" in df.value.columns)
    assert len(ranking) == 2  # the base and the adapter, pooled over both runs
    tuned = Path(app_store["demo"]["tuned"]).name
    leader = ranking.sort_values("rating", ascending=False).iloc[0]["model"]
    assert (leader == tuned) == (app_store["demo"]["judge_stats"]["win_rate"] > 0.5)
    for _, model in ranking.iterrows():
        assert model["ci_lo"] <= model["rating"] <= model["ci_hi"]


def test_run_page_shows_settings_charts_and_items(monkeypatch, app_store, app_db, toy_manifest, toy_world):
    import json

    demo = app_store["demo"]
    at = _open_run(_app(monkeypatch, app_db), demo["run_id"])
    texts = [t.value for t in at.text]
    golden = [json.loads(line) for line in (toy_world / toy_manifest["golden"]).read_text().splitlines() if line.strip()]
    first = sorted(golden, key=lambda item: item["id"])[0]
    assert any(first["instruction"] in text for text in texts), "the first item's instruction is not shown"
    assert first["output"] in texts, "the ideal answer is not shown"
    # Forgetting per task with CIs, and the adapter's training curve (joined by its weights' hash), beside the
    # judge's calibration chart.
    specs = [chart.proto.spec for chart in _charts(at)]
    assert any("Accuracy change" in spec for spec in specs) and any('"title": "loss"' in spec for spec in specs)
    assert any("Loss while training the adapter (sft)" in c.value for c in at.caption)
    settings = next(df.value for df in at.dataframe if "setting" in df.value.columns)
    assert "judge" in " ".join(settings["setting"]) and "versions" not in settings.columns
    versions = next(df.value for df in at.dataframe if "library" in df.value.columns)
    assert "torch" in set(versions["library"])

    # Losses only: every item shown is a loss, and the pager counts as many as the run reported.
    at.radio(key="item_filter").set_value("losses").run()
    losses = demo["judge_stats"]["losses"]
    headers = [m.value for m in at.markdown if m.value.startswith("**")]
    if losses:
        assert headers and all("tuned loses" in h for h in headers)
        pager = next(n for n in at.number_input if n.key.startswith("item_page:losses"))
        assert f"{losses} items" in pager.label
    else:
        assert not headers and any("No losses" in i.value for i in at.info)


def test_markup_in_store_texts_is_shown_literally(monkeypatch, app_store, app_db):
    at = _open_run(_app(monkeypatch, app_db), app_store["multi"]["run_id"])
    texts = [t.value for t in at.text]
    script, markdown = HOSTILE_GOLDEN
    assert any(script["instruction"] in t for t in texts)
    assert script["output"] in texts
    assert any(markdown["instruction"] in t for t in texts)
    # Nothing from the store reaches Markdown or HTML unescaped.
    assert not at.get("html")
    for element in [*at.markdown, *at.caption, *at.title]:
        assert "<script" not in element.value and "<img" not in element.value and "![" not in element.value


def test_missing_empty_or_foreign_store_says_how_to_fill_it(monkeypatch, tmp_path):
    at = _app(monkeypatch, tmp_path / "missing.duckdb")
    hint = " ".join(i.value for i in at.info)
    assert "make demo" in hint and "evalhub demo" in hint

    from evalhub.store import write_connection

    with write_connection(tmp_path / "empty.duckdb"):
        pass  # a migrated store with no run in it
    at = _app(monkeypatch, tmp_path / "empty.duckdb")
    assert "make demo" in " ".join(i.value for i in at.info)

    (tmp_path / "notes.duckdb").write_text("not a database")
    at = _app(monkeypatch, tmp_path / "notes.duckdb")
    assert at.error and "cannot open the store" in at.error[0].value


def test_evalhub_app_refuses_a_busy_port(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "evalhub", "app", "--db", str(tmp_path / "s.duckdb"),
                               "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "--port" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _run_without_its_golden_file(tmp_path, golden_items: bool):
    """A run whose golden file is not on this machine (its store was copied off the machine that wrote it)."""
    from evalhub.records import Generation, ModelRef, RunRecord

    gone = str(tmp_path / "elsewhere" / "golden.jsonl")
    judgments = [{"golden_file": gone, "item_id": "q1", "tuned_position": position, "judge": "reference",
                  "raw_reply": "{}", "status": "ok", "verdict": "win", "reason": "closer to the ideal"}
                 for position in ("A", "B")]
    return RunRecord(
        run_id="run-elsewhere", kind="compare", created_at="2026-01-01 00:00:00",
        base=ModelRef(model_id="m-base", kind="base", path="/models/base"),
        tuned=ModelRef(model_id="m-tuned", kind="adapter", path="/adapters/a", base_path="/models/base", adapter_hash="abc"),
        config={"inputs": {gone: "0" * 64}}, summary={}, judge="reference", golden=[gone],
        generations=[("base", gone, {"temperature": 0}, Generation("q1", "Say hello.", "hi")),
                     ("tuned", gone, {"temperature": 0}, Generation("q1", "Say hello.", "Hello there."))],
        judgments=judgments,
        golden_items=[{"golden_file": gone, "item_id": "q1", "instruction": "Say hello.", "input": "",
                       "output": "Hello there, the ideal answer.", "tags": []}] if golden_items else [])


def test_ideal_answers_come_from_the_store_when_the_golden_file_is_gone(monkeypatch, tmp_path):
    from evalhub.store import save_run

    save_run(_run_without_its_golden_file(tmp_path, golden_items=True), tmp_path / "copied.duckdb")
    at = _open_run(_app(monkeypatch, tmp_path / "copied.duckdb"), "run-elsewhere")
    assert "Hello there, the ideal answer." in [t.value for t in at.text]
    assert not any("not on this machine" in c.value for c in at.caption)


def test_a_run_stored_before_golden_items_says_why_its_ideal_answers_are_missing(monkeypatch, tmp_path):
    from evalhub.store import _connect, save_run
    from evalhub.store._schema import MIGRATIONS

    monkeypatch.setattr(_connect, "MIGRATIONS", MIGRATIONS[:1])  # a store written by the first schema
    save_run(_run_without_its_golden_file(tmp_path, golden_items=False), tmp_path / "old.duckdb")
    monkeypatch.undo()
    at = _open_run(_app(monkeypatch, tmp_path / "old.duckdb"), "run-elsewhere")  # read-only: not migrated
    assert any("is not on this machine" in c.value for c in at.caption)
    assert "(not available)" in [t.value for t in at.text]


def test_a_postgresql_store_never_shows_its_password(monkeypatch, app_store, pg_server):
    from urllib.parse import urlsplit

    from evalhub.store import import_runs

    url = pg_server.new_database()
    import_runs([app_store["db"]], url)
    at = _app(monkeypatch, url)
    password = urlsplit(url).password
    assert at.sidebar.text_input(key="db").value == url.replace(f":{password}@", "@")
    assert len(_leaderboard(at)) == 2
    shown = [e.value for e in [*at.markdown, *at.caption, *at.title, *at.info, *at.error, *at.sidebar.text_input]]
    assert not any(password in str(value) for value in shown)
