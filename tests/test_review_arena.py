"""Blind review of an arena's pairs: the store reads one pair's answers and judge verdicts from a's side, votes
are stored per pair, the Review page offers pairs without naming their models, and the arena page shows what
the votes say per pair, pinned to hand-computed values."""

from __future__ import annotations

import pytest

from evalhub.app.review_queue import shown_first, verdict_of
from evalhub.store import HumanVote, pair_key, record_votes, votes_for_run

MODELS = ("/models/alpha-base", "/adapters/beta-lora", "/adapters/gamma-lora")
ITEMS = ("i1", "i2", "i3", "i4")
ALPHA, BETA, GAMMA = MODELS
# pair (alpha, gamma): the judge's verdict from alpha's side with alpha shown first (A) and second (B); i2's two
# orders disagree, so it is the one item "disputed by the judges".
ALPHA_GAMMA = {"i1": ("win", "win"), "i2": ("win", "loss"), "i3": ("win", "win"), "i4": ("win", "win")}
# the reviewers' votes on (alpha, gamma), from alpha's side
HUMAN = [("i1", "ana", "win"), ("i2", "ana", "tie"), ("i3", "ana", "loss"), ("i4", "ana", "win"),
         ("i1", "bo", "win"), ("i3", "bo", "win")]


def _judgment(a, b, item, position, verdict):
    return {"a": a, "b": b, "golden_file": "g.jsonl", "item_id": item, "a_position": position, "judge": "reference",
            "raw_reply": "{}", "status": "ok", "verdict": verdict, "reason": None, "prompt_tokens": None,
            "completion_tokens": None, "cost_usd": None, "is_canary": False}


def _arena(run_id: str = "arena-1"):
    """Three models, three pairs, four items; the answers never name their model (the page must stay blind)."""
    from evalhub.records import Generation, ModelRef
    from evalhub.store._arenas import ArenaRecord

    models = {name: ModelRef(model_id=f"id-{n}", kind="adapter", path=name) for n, name in enumerate(MODELS)}
    pairs = [(ALPHA, BETA), (ALPHA, GAMMA), (BETA, GAMMA)]
    judgments = []
    for a, b in pairs:
        for item in ITEMS:
            first, second = ALPHA_GAMMA[item] if (a, b) == (ALPHA, GAMMA) else ("tie", "tie")
            judgments += [_judgment(a, b, item, "A", first), _judgment(a, b, item, "B", second)]
    summary = {"run_id": run_id, "models": list(MODELS), "judge_stats": {"judge": "reference"}, "warnings": [],
               "ratings": [{"model": m, "rating": 1000.0, "ci": [990.0, 1010.0], "rank": 1, "comparisons": 8}
                           for m in MODELS],
               "pairs": [{"a": a, "b": b, "wins": 0, "losses": 0, "ties": 4, "win_rate": 0.5,
                          "win_rate_ci": [0.2, 0.8], "p_value": 1.0, "p_holm": 1.0, "significant": False}
                         for a, b in pairs]}
    generations = [(name, "g.jsonl", {"seed": 0}, Generation(item_id=item, prompt=f"question {item}",
                                                            output=f"reply {n} to {item}"))
                   for n, name in enumerate(MODELS) for item in ITEMS]
    items = [{"golden_file": "g.jsonl", "item_id": item, "instruction": f"question {item}", "input": "",
              "output": f"ideal {item}", "tags": []} for item in ITEMS]
    return ArenaRecord(run_id=run_id, created_at="2026-01-02 00:00:00", judge="reference", golden=["g.jsonl"],
                       anchor=None, config={"seed": 0}, summary=summary, models=models, generations=generations,
                       judgments=judgments, golden_items=items)


def _votes(run_id: str = "arena-1"):
    return [HumanVote(run_id=run_id, pair=pair_key(ALPHA, GAMMA), golden_file="g.jsonl", item_id=item,
                      reviewer=reviewer, verdict=verdict) for item, reviewer, verdict in HUMAN]


def test_a_pairs_answers_and_verdicts_come_from_its_first_models_side(store):
    from evalhub.store import arena_pair_answers, arena_pair_verdicts
    from evalhub.store._arenas import save_arena

    save_arena(_arena(), store)
    answers = arena_pair_answers("arena-1", ALPHA, GAMMA, store)
    assert sorted(answers) == [("g.jsonl", item) for item in ITEMS]
    assert answers[("g.jsonl", "i3")] == {"prompt": "question i3", "candidate": "reply 0 to i3",
                                          "baseline": "reply 2 to i3", "ideal": "ideal i3"}
    assert arena_pair_verdicts("arena-1", ALPHA, GAMMA, store) == {
        "reference": {("g.jsonl", item): orders for item, orders in ALPHA_GAMMA.items()}}
    assert arena_pair_answers("arena-1", ALPHA, "/not/in/it", store) == {}


def test_votes_on_one_pair_give_hand_computed_win_rate_and_kappas_and_leave_the_others_alone(store):
    from evalhub.human import arena_human_summary, human_summary
    from evalhub.store._arenas import save_arena

    save_arena(_arena(), store)
    record_votes(_votes(), store)
    pairs = [(ALPHA, BETA), (ALPHA, GAMMA), (BETA, GAMMA)]
    summary = arena_human_summary("arena-1", pairs, store)
    assert [(p["a"], p["b"]) for p in summary] == [(ALPHA, GAMMA)]  # nobody voted on the other two
    pair = summary[0]
    # Items: i1 win (2 wins), i2 tie, i3 tie (one win, one loss: no majority), i4 win: (2 + 2/2) / 4.
    assert (pair["n_votes"], pair["n_items"], pair["reviewers"]) == (6, 4, ["ana", "bo"])
    assert (pair["wins"], pair["ties"], pair["losses"]) == (2, 2, 0)
    assert pair["win_rate"] == pytest.approx(0.75)
    # Fleiss (unequal m) over i1 (win, win) and i3 (win, loss): P-bar = (1 + 0) / 2, P_e = (3/4)^2 + (1/4)^2.
    assert pair["reviewer_agreement"]["n"] == 2
    assert pair["reviewer_agreement"]["kappa"] == pytest.approx((0.5 - 10 / 16) / (1 - 10 / 16))
    # The judge, orders combined: i1 win, i2 tie (orders disagree), i3 win, i4 win; humans win, tie, tie, win.
    # p_o = 3/4, p_e = (3/4)(2/4) + (1/4)(2/4) = 1/2, kappa = (3/4 - 1/2) / (1/2) = 1/2.
    assert pair["judge_agreement"] == {"reference": {"n": 4, "accuracy": pytest.approx(0.75),
                                                     "kappa": pytest.approx(0.5)}}
    assert human_summary("arena-1", store) is None  # pair votes are not a compare run's votes


def _app(monkeypatch, db):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    monkeypatch.setenv("EVALHUB_DB", str(db))
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()


def test_a_reviewer_votes_blind_on_an_arena_pair_and_the_arena_page_shows_the_votes(monkeypatch, tmp_path):
    from evalhub.store import save_run
    from evalhub.store._arenas import save_arena
    from tests.test_human_votes import _six_item_run
    from tests.test_review_page import _texts

    db = tmp_path / "s.duckdb"
    save_run(_six_item_run("run-6"), db)  # the leaderboard needs a run; the review is of the arena
    save_arena(_arena(), db)
    at = _app(monkeypatch, db)
    at.sidebar.radio(key="page").set_value("Review").run()
    at.text_input(key="reviewer_typed").input("cy")
    at.button[0].click().run()
    at.sidebar.radio(key="review_source").set_value("an arena pair").run()
    pair_box = at.sidebar.selectbox(key="review_pair:arena-1")
    assert list(pair_box.options) == ["pair 1 of 3", "pair 2 of 3", "pair 3 of 3"]
    pair_box.set_value(1).run()  # (alpha, gamma)
    assert not at.exception, [e.value for e in at.exception]
    # By default only the item the judge's orders disputed is up.
    assert any("0 voted / 1 to review" in str(p.proto.text) for p in at.get("progress"))
    at.radio(key="review_triage").set_value("all").run()
    pressed = {"i1": "1", "i2": "2", "i3": "tie", "i4": "1"}
    for item, choice in pressed.items():
        shown = [t.value for t in at.main.get("text") if t.value.startswith("reply")]
        first = shown_first("cy", "arena-1", ("g.jsonl", item), pair_key(ALPHA, GAMMA))
        assert shown == ([f"reply 0 to {item}", f"reply 2 to {item}"] if first == "candidate"
                         else [f"reply 2 to {item}", f"reply 0 to {item}"])
        page = "\n".join(_texts(at))
        for secret in (*MODELS, "alpha", "beta", "gamma", "reference"):  # names, paths, the judge
            assert secret not in page, secret
        at.button(key=f"review_vote_{choice}").click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert any("4 voted / 4 to review" in str(p.proto.text) for p in at.get("progress"))
    votes = {v.item_id: v for v in votes_for_run("arena-1", db)}
    assert sorted(votes) == list(ITEMS) and {v.pair for v in votes.values()} == {pair_key(ALPHA, GAMMA)}
    for item, choice in pressed.items():
        assert votes[item].verdict == verdict_of(choice, votes[item].shown_first)  # from alpha's side
    assert votes_for_run("run-6", db) == []

    record_votes([v for v in _votes() if v.reviewer == "ana"], db)
    at.sidebar.radio(key="page").set_value("Arenas").run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "human_win_rate" in df.value.columns)
    row = table.to_dict("records")[0]
    assert len(table) == 1 and (row["a"], row["b"]) == ("alpha-base", "gamma-lora")
    assert (row["votes"], row["items"], row["reviewers"]) == (8, 4, 2)
    # Each item's majority over cy's and ana's votes, computed by hand from the same verdict_of mapping.
    from evalhub.stats.human import item_verdict

    mine = {item: votes[item].verdict for item in ITEMS}
    ana = {item: verdict for item, reviewer, verdict in HUMAN if reviewer == "ana"}
    per_item = [item_verdict([mine[item], ana[item]]) for item in ITEMS]
    expected = (per_item.count("win") + per_item.count("tie") / 2) / 4
    assert row["human_win_rate"] == pytest.approx(expected)
    assert "reference: kappa" in table.columns


def test_an_arena_nobody_voted_on_says_so(monkeypatch, tmp_path):
    from evalhub.store import save_run
    from evalhub.store._arenas import save_arena
    from tests.test_human_votes import _six_item_run

    db = tmp_path / "s.duckdb"
    save_run(_six_item_run("run-6"), db)
    save_arena(_arena(), db)
    at = _app(monkeypatch, db)
    at.sidebar.radio(key="page").set_value("Arenas").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Nobody has voted on this arena yet" in c.value for c in at.caption)
