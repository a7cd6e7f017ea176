"""The Review page's decisions (evalhub/app/review_queue.py): the reviewer from the proxy's header, the blind
answer order, what a button means from the candidate's side, and which items each triage picks; then the page
itself through Streamlit's AppTest on a small store (a typed reviewer name, votes stored, nothing revealed)."""

from __future__ import annotations

from collections import Counter

import pytest

from evalhub.app.review_queue import (AGAINST_REVIEWERS, ALL, DISPUTED, SAMPLE, judge_disputed, proxy_user,
                                      review_queue, reviewers_disputed, shown_first, verdict_of)
from evalhub.app.text import md_literal
from evalhub.store import HumanVote


def _vote(item: str, reviewer: str, verdict: str | None) -> HumanVote:
    return HumanVote(run_id="r", golden_file="g", item_id=item, reviewer=reviewer, verdict=verdict)


def test_the_proxy_header_names_the_reviewer():
    assert proxy_user({"X-Forwarded-User": "ana"}) == "ana"
    assert proxy_user({"x-auth-request-user": " bo "}) == "bo"  # header names are case-insensitive
    assert proxy_user({"X-Forwarded-User": "ana", "X-Auth-Request-User": "bo"}) == "ana"
    assert proxy_user({"X-Forwarded-User": "  ", "Host": "evalhub"}) is None
    assert proxy_user(None) is None


def test_answer_order_is_stable_per_reviewer_and_item_and_mixed_across_items():
    items = [("g", f"i{n}") for n in range(200)]
    orders = [shown_first("ana", "r", item) for item in items]
    assert orders == [shown_first("ana ", "r", item) for item in items]  # every rerun, the same order
    # Random, not fixed: both orders occur about equally (binomial(200, 1/2): 100 +- 3 sd is 79..121).
    assert 79 <= Counter(orders)["candidate"] <= 121
    assert orders != [shown_first("bo", "r", item) for item in items]  # another reviewer, another order
    assert orders != [shown_first("ana", "r2", item) for item in items]


def test_buttons_map_to_the_candidates_verdict_through_the_order_shown():
    assert verdict_of("1", "candidate") == "win"
    assert verdict_of("2", "candidate") == "loss"
    assert verdict_of("1", "baseline") == "loss"
    assert verdict_of("2", "baseline") == "win"
    assert verdict_of("tie", "baseline") == verdict_of("tie", "candidate") == "tie"
    assert verdict_of("skip", "candidate") is None
    with pytest.raises(ValueError):
        verdict_of("3", "candidate")
    with pytest.raises(ValueError):
        verdict_of("1", "tuned")


# Judge verdicts from the candidate's side: (candidate shown first, candidate shown second).
_ONE_JUDGE = {"j": {("g", "agree"): ("win", "win"), ("g", "orders"): ("win", "loss"),
                    ("g", "half"): ("win", None), ("g", "tie"): ("tie", "tie")}}
_PANEL = {"j1": {("g", "a"): ("win", "win"), ("g", "b"): ("loss", "loss"), ("g", "c"): ("tie", "tie")},
          "j2": {("g", "a"): ("win", "win"), ("g", "b"): ("win", "win"), ("g", "c"): (None, None)}}


def test_disputed_items_are_order_disagreements_and_panel_splits():
    # One order missing is unscored, not a dispute.
    assert judge_disputed(_ONE_JUDGE) == {("g", "orders")}
    # b: the panel's judges split; c: j2 gave no verdict, so nobody disagrees with j1.
    assert judge_disputed(_PANEL) == {("g", "b")}


def test_items_where_judges_and_other_reviewers_disagree():
    votes = [_vote("agree", "bo", "loss"), _vote("tie", "bo", "tie"), _vote("orders", "bo", "loss"),
             _vote("agree", "ana", "win"), _vote("half", "bo", None)]
    # agree: the judge says win, bo (the only other reviewer) loss; orders: the judge's orders fold to a tie,
    # bo says loss; tie: they agree; half: bo skipped; ana's own vote is not "earlier reviewers".
    assert reviewers_disputed(_ONE_JUDGE, votes, "ana") == {("g", "agree"), ("g", "orders")}
    # For bo, only ana's vote counts: she agrees with the judge.
    assert reviewers_disputed(_ONE_JUDGE, votes, "bo") == set()


def test_queue_skips_what_the_reviewer_voted_on_and_counts_progress():
    items = [("g", "tie"), ("g", "agree"), ("g", "orders"), ("g", "half")]
    votes = [_vote("agree", "ana", "win"), _vote("half", "ana", None), _vote("tie", "bo", "tie")]
    queue = review_queue(ALL, items, _ONE_JUDGE, votes, "ana")
    assert queue.selected == sorted(items)
    assert queue.todo == [("g", "orders"), ("g", "tie")]  # a skip counts as seen
    assert queue.voted == 2
    assert review_queue(DISPUTED, items, _ONE_JUDGE, votes, "ana").todo == [("g", "orders")]
    assert review_queue(AGAINST_REVIEWERS, items, _ONE_JUDGE, votes, "ana").selected == []  # bo agrees with it
    with pytest.raises(ValueError):
        review_queue("worst", items, _ONE_JUDGE, votes, "ana")


def test_the_random_sample_is_seeded_and_the_same_for_every_reviewer():
    items = [("g", f"i{n:02d}") for n in range(30)]
    first = review_queue(SAMPLE, items, {}, [], "ana", seed=3, size=5)
    assert len(first.selected) == 5 and len(set(first.selected)) == 5
    assert first.selected == review_queue(SAMPLE, list(reversed(items)), {}, [], "bo", seed=3, size=5).selected
    assert first.selected != review_queue(SAMPLE, items, {}, [], "ana", seed=4, size=5).selected
    assert sorted(review_queue(SAMPLE, items, {}, [], "ana", seed=3, size=99).selected) == items


# ---------------------------------------------------------------- the page, through Streamlit's AppTest

def _review_app(monkeypatch, db):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    monkeypatch.setenv("EVALHUB_DB", str(db))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.sidebar.radio(key="page").set_value("Review").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at) -> list[str]:
    """Every text the page draws (main area and sidebar), whatever the element."""
    found = []
    for root in (at.main, at.sidebar):
        for kind in ("text", "markdown", "caption", "subheader", "title", "info", "success", "error"):
            found += [str(e.value) for e in root.get(kind)]
        for kind in ("selectbox", "radio"):
            for widget in root.get(kind):
                found += [str(option) for option in widget.options]  # as drawn (formatted)
    return found


def test_a_typed_reviewer_votes_blind_and_each_vote_is_stored_from_the_candidates_side(monkeypatch, tmp_path):
    from evalhub.store import save_run, votes_for_run
    from tests.test_human_votes import _six_item_run

    db = tmp_path / "s.duckdb"
    save_run(_six_item_run("run-6"), db)
    at = _review_app(monkeypatch, db)
    assert [b.label for b in at.button] == ["Start reviewing"], "no vote before the reviewer is named"
    at.text_input(key="reviewer_typed").input("ana")
    at.button[0].click().run()  # the form's "Start reviewing"
    at.radio(key="review_triage").set_value("all").run()
    pressed = ["1", "2", "tie", "skip", "1"]
    shown = []
    for choice in pressed:
        answers = [t.value for t in at.main.get("text") if t.value.startswith(("base says", "tuned says"))]
        shown.append(answers)
        if choice == "tie":
            at.text_input(key="review_note:run-6:g.jsonl:i3").input("close call")
        at.button(key=f"review_vote_{choice}").click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert any("5 voted / 6 to review" in str(p.proto.text) for p in at.get("progress"))
    votes = {v.item_id: v for v in votes_for_run("run-6", db)}
    assert sorted(votes) == ["i1", "i2", "i3", "i4", "i5"]  # one item after another, in the stable order
    for (item, vote), choice, answers in zip(sorted(votes.items()), pressed, shown):
        assert vote.reviewer == "ana"
        assert vote.shown_first == shown_first("ana", "run-6", ("g.jsonl", item))
        # "Answer 1" on the page was the answer of the side stored as shown first.
        assert answers == ([f"tuned says {item}", f"base says {item}"] if vote.shown_first == "candidate"
                           else [f"base says {item}", f"tuned says {item}"])
        assert vote.verdict == verdict_of(choice, vote.shown_first)
    assert votes["i3"].note == "close call"
    page = "\n".join(_texts(at))
    assert "tuned says i6" in page  # the sixth item is up next
    for secret in ("/models/base", "/adapters/a", "reference"):  # the models' paths, the judge
        assert secret not in page, secret


def test_run_page_and_leaderboard_show_what_the_votes_give(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from evalhub.store import record_votes, save_run
    from tests.conftest import REPO
    from tests.test_human_votes import _HUMAN, _six_item_run

    db = tmp_path / "s.duckdb"
    save_run(_six_item_run("run-6"), db)
    save_run(_six_item_run("run-7"), db)  # nobody votes on it: its human column stays blank
    monkeypatch.setenv("EVALHUB_DB", str(db))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.toggle(key="every_run").set_value(True).run()
    row = next(df.value for df in at.dataframe if "win_rate" in df.value.columns).set_index("run_id")
    assert row["human_win_rate"].isna().all()
    record_votes([HumanVote(run_id="run-6", golden_file="g.jsonl", item_id=item, reviewer=reviewer, verdict=verdict)
                  for item, reviewer, verdict in _HUMAN], db)
    at.run()
    row = next(df.value for df in at.dataframe if "win_rate" in df.value.columns).set_index("run_id")
    assert row.loc["run-6", "human_win_rate"] == pytest.approx(3.5 / 6)  # test_human_votes: 7/12 by hand
    assert row["human_win_rate"].isna().sum() == 1  # run-7

    at.sidebar.radio(key="page").set_value("Run details").run()
    at.sidebar.selectbox(key="run_id").set_value("run-6").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Human win rate"] == "58.3%" and metrics["Votes"] == "10"
    assert metrics["Reviewer agreement (Fleiss' kappa)"] == f"{5 / 12:.3f}"  # hand-computed 5/12
    judges = next(df.value for df in at.dataframe if "kappa" in df.value.columns and "items" in df.value.columns)
    assert judges.to_dict("records") == [{"judge": "reference", "items": 6, "accuracy": pytest.approx(4 / 6),
                                          "kappa": pytest.approx(5 / 11)}]
    assert any(md_literal("3 reviewers: ana, bo, cy") in c.value for c in at.caption)

    at.sidebar.selectbox(key="run_id").set_value("run-7").run()
    assert "Human win rate" not in {m.label for m in at.metric}
    assert any("Nobody has voted on this run yet" in c.value for c in at.caption)
