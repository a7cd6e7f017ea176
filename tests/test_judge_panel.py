"""Judge panels, protocols as data, agreement with humans, style control, breakdowns by tag and identical
answers, against scripted judges with known truth on 127.0.0.1 (tests/fake_openai.py): exact counts and
exact kappas, computed by hand in the comments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from evalhub.contracts import RunSummary
from evalhub.errors import UserError
from evalhub.gate import GateThresholds, evaluate_gate
from evalhub.judge import JudgeOptions, judge_pairs, load_protocol
from evalhub.judge._protocol import parse_verdict
from evalhub.records import Generation, GoldenItem
from evalhub.stats.agreement import cohen_kappa, fleiss_kappa
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]
FENCED = re.compile(r"<<<ANSWER (A|B) ([0-9a-f]{16})>>>\n(.*?)\n<<<END OF ANSWER \1 \2>>>", re.S)
REFERENCE = re.compile(r"<<<REFERENCE (\w+)>>>\n(.*?)\n<<<END OF REFERENCE \1>>>", re.S)


def shown(body: dict) -> dict[str, str]:
    return {label: text for label, _marker, text in FENCED.findall(body["messages"][1]["content"])}


def verdict(label: str) -> str:
    return json.dumps({"verdict": label, "reason": "scripted"})


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-panel-0123456789")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def options(server, tmp_path, **extra) -> JudgeOptions:
    return JudgeOptions(**{"base_url": server.base_url, "cache_path": str(tmp_path / "cache.sqlite"), "timeout": 5.0,
                           "max_retries": 1, "progress": False, **extra})


# ---------------------------------------------------------------- the panel

# Items 0-3 are tagged math, 4-7 facts. The tuned answer is right (it is the reference); the base answer is
# wrong and longer on items 0-4, shorter on 5-6; item 7's two answers are the same text but for whitespace.
PANEL_ITEMS = [GoldenItem(id=f"q{k}", instruction=f"Question {k}?", output=f"right {k}",
                          tags=("math",) if k < 4 else ("facts",)) for k in range(8)]
PANEL_TUNED = {f"q{k}": f"right {k}" for k in range(8)}
PANEL_BASE = {**{f"q{k}": f"a wrong and much longer answer {k}" for k in range(5)},
              "q5": "no", "q6": "no", "q7": "right  7 "}


def panel_judge(body: dict) -> str:
    """good: the answer equal to the reference; biased: the longer answer; garbage: unreadable on q0-q2,
    then always "A" (position bias)."""
    pair, reference = shown(body), REFERENCE.search(body["messages"][1]["content"]).group(2)
    item = int(reference.split()[-1])
    if body["model"] == "good":
        return verdict("A" if pair["A"] == reference else "B")
    if body["model"] == "biased":
        return verdict("A" if len(pair["A"]) > len(pair["B"]) else "B")
    return "Both answers have merit." if item < 3 else verdict("A")


def run_panel(server, tmp_path, judges, **extra):
    items = PANEL_ITEMS
    return judge_pairs(items, base={i.id: Generation(i.id, i.prompt, PANEL_BASE[i.id]) for i in items},
                       tuned={i.id: Generation(i.id, i.prompt, PANEL_TUNED[i.id]) for i in items},
                       judge=judges, options=options(server, tmp_path, **extra), golden_file="g.jsonl")


def test_a_biased_a_garbage_and_a_good_judge_give_exact_pooled_counts_and_kappa(key, tmp_path):
    with FakeOpenAI(panel_judge) as server:
        outcome = run_panel(server, tmp_path, ["openai:good", "openai:biased", "openai:garbage"])
        asked = server.chat_requests
    stats = outcome.stats
    # Item verdicts (good, biased, garbage) -> panel:
    #   q0-q2: win, loss, none -> tie (no verdict has 2 of 3: the unreadable judge still counts)
    #   q3-q4: win, loss, tie -> tie;  q5-q6: win, win, tie -> win;  q7: identical answers -> tie, no call.
    assert (stats["n"], stats["wins"], stats["losses"], stats["ties"], stats["scored"]) == (8, 2, 0, 6, 8)
    assert stats["win_rate"] == pytest.approx(5 / 8) and stats["identical_pairs"] == 1
    judges = stats["judges"]
    assert [(j["wins"], j["losses"], j["ties"], j["unscored"]) for j in judges.values()] == \
        [(7, 0, 1, 0), (2, 5, 1, 0), (0, 0, 5, 3)]
    assert judges["openai:good"]["win_rate"] == pytest.approx(7.5 / 8)
    assert judges["openai:biased"]["win_rate"] == pytest.approx(2.5 / 8)
    # Calls: 7 items x 2 orders for good and biased; garbage re-asked once on each of q0-q2's 6 calls.
    assert [j["judge_calls"] for j in judges.values()] == [14, 14, 20]
    assert stats["judge_calls"] == 48 == len(asked)
    assert stats["parse_failures"] == 6 and judges["openai:garbage"]["parse_failures"] == 6
    # Position consistency pooled over judges: good 7/7, biased 7/7, garbage 0/4 (q3-q6 always "A").
    assert stats["position_consistency"] == pytest.approx(14 / 18)
    # Fleiss' kappa over q3-q6, which every judge scored (q7's identical answers are left out):
    #   q3, q4: (win, loss, tie) -> P_i = 0;  q5, q6: (win, win, tie) -> P_i = (4 + 1 - 3) / 6 = 1/3
    #   P-bar = 1/6; shares win 6/12, loss 2/12, tie 4/12 -> P_e = 7/18; kappa = (1/6 - 7/18) / (11/18) = -4/11
    agreement = stats["judge_agreement"]
    assert agreement["method"] == "fleiss" and agreement["n"] == 4
    assert agreement["raw"] == pytest.approx(1 / 6) and agreement["kappa"] == pytest.approx(-4 / 11)
    # By tag: math q0-q3 all ties; facts q4 tie, q5 win, q6 win, q7 tie.
    assert {t: (b["n"], b["wins"], b["losses"], b["ties"]) for t, b in stats["by_tag"].items()} == \
        {"math": (4, 0, 0, 4), "facts": (4, 2, 0, 2)}
    assert stats["by_tag"]["facts"]["win_rate"] == 0.75
    assert judges["openai:biased"]["by_tag"]["math"]["losses"] == 4
    # Rows: every judge's calls, and the panel's verdict per item and order for the store's judgments table.
    assert len(outcome.calls) == 3 * 16 and {r["judge"] for r in outcome.judgments} == {
        "openai:good + openai:biased + openai:garbage"}
    panel_rows = {(r["item_id"], r["tuned_position"]): r["verdict"] for r in outcome.judgments}
    assert panel_rows[("q5", "A")] == panel_rows[("q5", "B")] == "win" and panel_rows[("q0", "B")] == "tie"
    assert stats["protocol"]["name"] == "pairwise"


def test_two_judges_report_cohen_kappa_and_a_reference_judge_joins_a_panel(key, tmp_path):
    with FakeOpenAI(panel_judge) as server:
        outcome = run_panel(server, tmp_path, ["openai:biased", "reference"])
    agreement = outcome.stats["judge_agreement"]
    assert agreement["method"] == "cohen" and agreement["n"] == 7
    reference = outcome.stats["judges"]["reference"]
    biased = {(r["item_id"], r["tuned_position"]): r["verdict"] for r in outcome.calls if r["judge"] == "openai:biased"}
    ref = {(r["item_id"], r["tuned_position"]): r["verdict"] for r in outcome.calls if r["judge"] == "reference"}
    first = [biased[(f"q{k}", "A")] for k in range(7)]
    second = [ref[(f"q{k}", "A")] for k in range(7)]
    assert agreement["kappa"] == pytest.approx(cohen_kappa(first, second, ("win", "loss", "tie")))
    assert reference["n"] == 8 and reference["judge_calls"] == 0


def test_a_judge_named_twice_is_refused(key, tmp_path):
    with pytest.raises(UserError, match="given twice"):
        judge_pairs(PANEL_ITEMS, {}, {}, ["reference", "reference"], JudgeOptions())


def test_identical_answers_are_ties_without_a_call(key, tmp_path):
    items = PANEL_ITEMS[:4]
    same = {i.id: Generation(i.id, i.prompt, f" {PANEL_TUNED[i.id]}\n") for i in items}
    with FakeOpenAI(panel_judge) as server:
        outcome = judge_pairs(items, base=same, tuned={i.id: Generation(i.id, i.prompt, PANEL_TUNED[i.id]) for i in items},
                              judge="openai:good", options=options(server, tmp_path))
        assert server.chat_requests == []
    stats = outcome.stats
    assert (stats["ties"], stats["identical_pairs"], stats["judge_calls"], stats["cost_usd"]) == (4, 4, 0, 0.0)
    assert stats["position_consistency"] is None  # no order was asked


# ---------------------------------------------------------------- agreement formulas (textbook examples)

def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15 -> p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, kappa 0.4
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_fleiss_kappa_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories: P-bar 0.378, P_e 0.213, kappa 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
             [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    ratings = [[c for c, count in enumerate(row) for _ in range(count)] for row in table]
    raw, kappa = fleiss_kappa(ratings, categories=range(5))
    assert raw == pytest.approx(0.378, abs=5e-4) and kappa == pytest.approx(0.210, abs=5e-4)


# ---------------------------------------------------------------- arena-hard

@pytest.mark.parametrize("reply, label, weight", [
    ("My own answer: 4.\nBoth are fine but A is exact. My final verdict is [[A>>B]]", "A", 3),
    ("[[A>B]]", "A", 1),
    ("Tie, relatively the same: [[A=B]]", "tie", 1),
    ("[[ B > A ]]", "B", 1),
    ("My final verdict is: [[B>>A]].", "B", 3),
    ("[[b>>a]]", "B", 3),
    ("First [[A>B]], on reflection [[B>A]]", None, 1),       # two different verdicts: ambiguous
    ("[[A>B]] or maybe [[A>>B]]", None, 1),                   # two strengths: ambiguous too
    ("[[A]]", None, 1),                                       # not a token of this protocol
    ('{"verdict": "A", "reason": "json"}', None, 1),          # the arena-hard parser reads brackets only
    ("", None, 1),
])
def test_arena_hard_parser_reads_every_form_and_refuses_ambiguity(reply, label, weight):
    parsed = parse_verdict(reply, load_protocol("arena-hard"))
    assert parsed.label == label
    if label is not None:
        assert parsed.weight == weight


def test_arena_hard_strong_verdicts_count_as_wins_and_weigh_three(key, tmp_path):
    def judge(body):
        pair = shown(body)
        assert "writing your own answer" in body["messages"][0]["content"] and "response_format" not in body
        strong = "[[A>>B]]" if pair["A"].startswith("right") else "[[B>A]]"
        return f"My answer: right.\nMy final verdict is {strong}"
    items = PANEL_ITEMS[:3]
    with FakeOpenAI(judge) as server:
        outcome = judge_pairs(items, base={i.id: Generation(i.id, i.prompt, PANEL_BASE[i.id]) for i in items},
                              tuned={i.id: Generation(i.id, i.prompt, PANEL_TUNED[i.id]) for i in items},
                              judge="openai:j", options=options(server, tmp_path, protocol="arena-hard"))
        assert server.chat_requests[0].body["max_completion_tokens"] == 2048
    stats = outcome.stats
    assert (stats["wins"], stats["position_consistency"]) == (3, 1.0)  # consistent in direction across strengths
    assert sorted(r["weight"] for r in outcome.calls) == [1, 1, 1, 3, 3, 3]
    assert stats["protocol"]["name"] == "arena-hard" and stats["protocol"]["hash"] != load_protocol().hash


def test_a_protocol_file_of_ones_own_and_bad_ones(key, tmp_path):
    text = (REPO / "evalhub/judge/protocols/pairwise.toml").read_text()
    mine = tmp_path / "terse.toml"
    mine.write_text(text.replace('name = "pairwise"', 'name = "terse"').replace("Which answer is better?", "Better?"))
    with FakeOpenAI(lambda body: verdict("A" if shown(body)["A"].startswith("right") else "B")) as server:
        outcome = run_panel(server, tmp_path, "openai:j", protocol=str(mine))
        assert all("Better?" in r.body["messages"][1]["content"] for r in server.chat_requests)
    assert outcome.stats["wins"] == 7 and outcome.stats["protocol"]["name"] == "terse"
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("{answer_b}", "{answer_c}"))
    with pytest.raises(UserError, match=r"broken.toml: user: .*does not render"):
        load_protocol(str(broken))
    with pytest.raises(UserError, match="unknown protocol"):
        load_protocol("arena-soft")


# ---------------------------------------------------------------- style control

def test_style_control_removes_a_preference_for_bold_text(key, tmp_path):
    # The judge likes bold and nothing else. The tuned answers use bold on 12 items, the base on 2, neither on 6:
    # the plain win rate is (12 + 6/2) / 20 = 0.75; with bold held equal there is no preference left.
    items = [GoldenItem(id=f"s{k}", instruction=f"Name a colour {k}.", output="blue") for k in range(20)]
    tuned = {f"s{k}": ("The answer is **blue**." if k < 12 else "The answer is blue.") for k in range(20)}
    base = {f"s{k}": ("The answer is **red**." if 12 <= k < 14 else "The answer is red.") for k in range(20)}

    def bold_lover(body):
        pair = shown(body)
        bold = {k: "**" in v for k, v in pair.items()}
        return verdict("tie" if bold["A"] == bold["B"] else ("A" if bold["A"] else "B"))

    with FakeOpenAI(bold_lover) as server:
        stats = judge_pairs(items, base={k: Generation(k, "", v) for k, v in base.items()},
                            tuned={k: Generation(k, "", v) for k, v in tuned.items()}, judge="openai:j",
                            options=options(server, tmp_path)).stats
    assert stats["win_rate"] == 0.75
    assert stats["sc_win_rate"] == pytest.approx(0.5, abs=0.03)


# ---------------------------------------------------------------- agreement with humans

CALIBRATION = [
    {"id": "p1", "instruction": "Q1", "answer_a": "one", "answer_b": "uno", "human": "A", "tags": ["math"]},
    {"id": "p2", "instruction": "Q2", "answer_a": "two", "answer_b": "dos", "human": "A", "tags": ["math"]},
    {"id": "p3", "instruction": "Q3", "answer_a": "three", "answer_b": "tres", "human": "B", "tags": ["math"]},
    {"id": "p4", "instruction": "Q4", "answer_a": "four", "answer_b": "cuatro", "human": "B", "tags": ["refusals"]},
    {"id": "p5", "instruction": "Q5", "answer_a": "five", "answer_b": "cinco", "human": "tie", "tags": ["refusals"]},
    {"id": "p6", "instruction": "Q6", "answer_a": "six", "answer_b": "seis", "human": "tie", "tags": ["refusals"]},
]
# What the scripted judge prefers, by pair: the text it picks (in either order), "tie", "first" (always "A":
# position-biased) or "garbage" (unreadable).
PREFERS = {"Q1": "one", "Q2": "dos", "Q3": "tres", "Q4": "first", "Q5": "tie", "Q6": "garbage"}


def calibration_judge(body: dict) -> str:
    question = re.search(r"# Request\n(Q\d)", body["messages"][1]["content"]).group(1)
    want, pair = PREFERS[question], shown(body)
    if want in ("tie", "first"):
        return verdict("tie" if want == "tie" else "A")
    if want == "garbage":
        return "I cannot decide."
    return verdict("A" if pair["A"] == want else "B")


def test_judge_calibrate_reports_hand_computed_agreement_and_stores_it(key, tmp_path):
    calibration = tmp_path / "calibration.jsonl"
    calibration.write_text("".join(json.dumps(p) + "\n" for p in CALIBRATION))
    db, out = tmp_path / "store.duckdb", tmp_path / "calibration.json"
    with FakeOpenAI(calibration_judge) as server:
        url = server.base_url
        proc = subprocess.run([sys.executable, "-m", "evalhub", "judge", "calibrate", str(calibration), "--judge",
                               "openai:cal", "--judge-base-url", server.base_url, "--json", str(out), "--db", str(db)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={**__import__("os").environ, "EVALHUB_CACHE": str(tmp_path / "cache"),
                                   "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    # Judge [A, B, B, tie (A in both orders), tie, unscored] against humans [A, A, B, B, tie, tie]:
    # agreement 3/6; kappa over (win, loss, tie, unscored): p_e = (1*2 + 2*2 + 2*2 + 1*0) / 36 = 5/18,
    # kappa = (1/2 - 5/18) / (13/18) = 4/13. Position consistency 4/5 (p4 flips with the order; p6 unscored).
    assert result["n"] == 6 and result["accuracy"] == 0.5
    assert result["kappa"] == pytest.approx(4 / 13) and result["position_consistency"] == pytest.approx(0.8)
    # math: judge [A, B, B] vs [A, A, B]: 2/3, p_e = 4/9, kappa 2/5; refusals: [tie, tie, -] vs [B, tie, tie]:
    # 1/3, p_e = 4/9, kappa -1/5.
    assert result["by_tag"]["math"]["accuracy"] == pytest.approx(2 / 3)
    assert result["by_tag"]["math"]["kappa"] == pytest.approx(Fraction(2, 5))
    assert result["by_tag"]["refusals"]["kappa"] == pytest.approx(-1 / 5)
    assert "accuracy 0.500" in proc.stdout
    from evalhub.store import latest_calibrations

    found = latest_calibrations([("openai:cal", url, load_protocol().hash)], db)
    assert found["openai:cal"]["kappa"] == pytest.approx(4 / 13)
    assert latest_calibrations([("openai:cal", url, load_protocol("arena-hard").hash)], db) == {}


def test_judge_calibrate_with_a_judge_that_scored_no_pair_reports_no_agreement(key, tmp_path):
    calibration = tmp_path / "calibration.jsonl"
    calibration.write_text("".join(json.dumps(p) + "\n" for p in CALIBRATION))
    db, out = tmp_path / "store.duckdb", tmp_path / "calibration.json"
    with FakeOpenAI(lambda body: "I cannot decide.") as server:
        proc = subprocess.run([sys.executable, "-m", "evalhub", "judge", "calibrate", str(calibration), "--judge",
                               "openai:cal", "--judge-base-url", server.base_url, "--json", str(out), "--db", str(db)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={**__import__("os").environ, "EVALHUB_CACHE": str(tmp_path / "cache"),
                                   "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["n"], result["accuracy"], result["kappa"], result["position_consistency"]) == (6, None, None, None)
    assert all(t["accuracy"] is None and t["kappa"] is None for t in result["by_tag"].values())
    assert "accuracy –, Cohen's kappa –, position consistency –" in proc.stdout, proc.stdout
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT accuracy, kappa FROM judge_calibrations").fetchall() == [(None, None)]


def test_a_panel_judge_that_never_gave_a_readable_verdict_is_named_in_a_warning(key, tmp_path):
    from types import SimpleNamespace

    from evalhub.contracts import JudgeStats
    from evalhub.stages._stage import RunContext
    from evalhub.stages.judgments import JudgeResult, JudgeStage

    def judge(body: dict) -> str:
        return "Both answers have merit." if body["model"] == "garbage" else verdict("tie")

    with FakeOpenAI(judge) as server:
        outcome = run_panel(server, tmp_path, ["openai:good", "openai:garbage"])
    stats = {key: value for key, value in outcome.stats.items() if key != "extra"}
    assert (stats["scored"], stats["judges"]["openai:garbage"]["scored"]) == (8, 1)  # q7: identical, no call
    summary = RunSummary(run_id="r", base="b", tuned="t")
    context = RunContext(request=SimpleNamespace(golden=("g.jsonl",)), golden={}, items=[],
                         judge="openai:good + openai:garbage")
    JudgeStage().summarize(JudgeResult(judgments=[], stats=JudgeStats(**stats)), summary, context)
    assert summary.warnings == ["judge openai:garbage gave no verdict on any of its 7 items (14 replies unreadable): "
                                "the panel's verdicts are its other judges' alone"]


def test_the_shipped_calibration_set_is_valid_and_balanced():
    from collections import Counter

    from evalhub.judge.calibrate import load_calibration, resolve_calibration_file

    pairs = load_calibration(resolve_calibration_file("judge_calibration"))
    assert 55 <= len(pairs) <= 65
    assert set(Counter(t for p in pairs for t in p.tags)) == {"arithmetic", "facts", "format", "refusals"}
    assert {p.human for p in pairs} == {"A", "B", "tie"}


def test_a_bad_calibration_line_is_one_error_naming_the_fix(tmp_path):
    from evalhub.judge.calibrate import load_calibration

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "p1", "instruction": "Q", "answer_a": "a", "answer_b": "b", "human": "C"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: human"):
        load_calibration(bad)


# ---------------------------------------------------------------- the gate

def _summary(judge_stats: dict, judge: str = "openai:a + openai:b") -> RunSummary:
    return RunSummary.model_validate({"run_id": "r", "base": "b", "tuned": "t", "judge": judge, "judge_stats": {
        "n": 4, "wins": 2, "losses": 1, "ties": 1, "scored": 4, "unscored": 0, **judge_stats}})


def test_gate_on_judge_agreement_and_on_agreement_with_humans():
    panel = {"judges": {"openai:a": {"n": 4, "wins": 2, "losses": 1, "ties": 1, "scored": 4, "unscored": 0},
                        "openai:b": {"n": 4, "wins": 2, "losses": 1, "ties": 1, "scored": 4, "unscored": 0}},
             "judge_agreement": {"raw": 0.75, "kappa": 0.6, "method": "cohen", "n": 4},
             "protocol": {"name": "pairwise", "version": 1, "hash": "h"},
             "calibration": {"openai:a": {"n": 60, "kappa": 0.7}}}
    result = evaluate_gate(_summary(panel), GateThresholds(min_judge_agreement=0.5, min_judge_human_agreement=0.6))
    (agreement, human) = result.checks
    assert agreement.passed and agreement.value == 0.6
    assert not human.passed and "no calibration of openai:b" in human.detail
    single = _summary({}, judge="openai:a")
    (check,) = evaluate_gate(single, GateThresholds(min_judge_agreement=0.5)).checks
    assert not check.passed and check.value is None and "one judge" in check.detail


# ---------------------------------------------------------------- one real compare with a panel

def test_compare_with_three_judges_reports_the_panel_each_judge_and_kappa(key, tmp_path, toy_world, toy_manifest,
                                                                          toy_adapter):
    golden = tmp_path / "tagged.jsonl"
    items = [json.loads(line) for line in (toy_world / toy_manifest["golden"]).read_text().splitlines()[:4]]
    golden.write_text("".join(json.dumps(item) + "\n" for item in items))
    out, db = tmp_path / "summary.json", tmp_path / "store.duckdb"

    def judge(body):
        pair, reference = shown(body), REFERENCE.search(body["messages"][1]["content"]).group(2)
        if body["model"] == "first":
            return verdict("A")
        return verdict("A" if pair["A"] == reference or len(pair["A"]) > len(pair["B"]) else "B")

    with FakeOpenAI(judge) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "evalhub", "compare", str(toy_world / toy_manifest["base"]), str(toy_adapter),
             "--golden", str(golden), "--judge", "reference", "--judge", "openai:first", "--judge", "openai:longer",
             "--judge-base-url", server.base_url, "--backend", "hf", "--max-new-tokens", "8",
             "--min-judge-agreement", "0.0", "--db", str(db), "--json", str(out), "--report-dir", str(tmp_path / "r")],
            capture_output=True, text=True, cwd=tmp_path, timeout=600,
            env={**__import__("os").environ, "EVALHUB_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)})
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    stats = json.loads(out.read_text())["judge_stats"]
    assert list(stats["judges"]) == ["reference", "openai:first", "openai:longer"]
    assert stats["judge_agreement"]["method"] == "fleiss" and stats["protocol"]["name"] == "pairwise"
    assert stats["judges"]["openai:first"]["ties"] + stats["judges"]["openai:first"]["unscored"] == 4
    assert set(stats["by_tag"]) == {t for item in items for t in item.get("tags", [])}
    assert "sc_win_rate" in stats and stats["n"] == 4
    report = next((tmp_path / "r").glob("*.md")).read_text()
    assert "Judges of the panel" in report and "Win rate by tag" in report
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT judge) FROM panel_judgments").fetchone()[0] == 3
        assert {r[0] for r in con.execute("SELECT DISTINCT judge FROM judgments").fetchall()} == {
            "reference + openai:first + openai:longer"}
