"""Blind human votes in the store (migration 7 `human_votes`) on both engines: one row per reviewer and item,
replaced on re-vote, two reviewers at once on PostgreSQL losing nothing, export/import carrying them; and
the statistics the votes give, pinned to hand-computed values."""

from __future__ import annotations

import threading

import pytest

from evalhub.errors import UserError
from evalhub.store import (HumanVote, export_parquet, import_runs, read_connection, record_vote, record_votes,
                           run_items, save_run, votes_for_run)
from tests.test_store import _run


def _vote(item: str, reviewer: str, verdict: str | None, note: str | None = None) -> HumanVote:
    return HumanVote(run_id="run-1", golden_file="g.jsonl", item_id=item, reviewer=reviewer, verdict=verdict,
                     shown_first="baseline", note=note)


def test_vote_replaces_the_reviewers_earlier_vote(store):
    save_run(_run("run-1"), store)
    assert run_items("run-1", store) == [("g.jsonl", "i1")]
    record_vote(_vote("i1", "ana", "loss"), store)
    record_vote(_vote("i1", "ana", "win", note="on second reading"), store)
    record_vote(_vote("i1", "bo", None), store)  # a skip is kept, so the item is not shown again
    votes = votes_for_run("run-1", store)
    assert sorted((v.reviewer, v.verdict, v.note) for v in votes) == [("ana", "win", "on second reading"),
                                                                      ("bo", None, None)]
    with read_connection(store) as con:
        assert con.execute("SELECT count(*) FROM human_votes").fetchone()[0] == 2


def test_bad_verdict_is_refused_and_nothing_written(store):
    save_run(_run("run-1"), store)
    with pytest.raises(UserError, match="verdict 'better'"):
        record_votes([_vote("i1", "ana", "win"), _vote("i1", "bo", "better")], store)
    assert votes_for_run("run-1", store) == []


def test_two_reviewers_voting_at_once_on_postgres_lose_nothing(pg_url):
    save_run(_run("run-1"), pg_url)
    items = [f"i{n}" for n in range(15)]
    errors: list[BaseException] = []

    def reviewer(name: str, verdict: str) -> None:
        try:
            for item in items:
                record_vote(_vote(item, name, verdict), pg_url)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=reviewer, args=("ana", "win")),
               threading.Thread(target=reviewer, args=("bo", "tie"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    votes = votes_for_run("run-1", pg_url)
    assert sorted((v.reviewer, v.item_id, v.verdict) for v in votes) == sorted(
        [("ana", i, "win") for i in items] + [("bo", i, "tie") for i in items])


def test_export_and_import_carry_the_votes(store, tmp_path):
    save_run(_run("run-1"), store)
    record_vote(_vote("i1", "ana", "win", note="clearer"), store)
    folder = tmp_path / "export"
    export_parquet("run-1", folder, store)
    assert (folder / "human_votes.parquet").is_file()
    target = tmp_path / "target.duckdb"
    import_runs([folder], target)
    [vote] = votes_for_run("run-1", target)
    assert (vote.reviewer, vote.item_id, vote.verdict, vote.note, vote.shown_first) == (
        "ana", "i1", "win", "clearer", "baseline")


# Six items: ana votes on all; bo and cy on some; cy skips one. Judge verdicts as below.
_HUMAN = [("i1", "ana", "win"), ("i2", "ana", "win"), ("i3", "ana", "win"), ("i4", "ana", "loss"),
          ("i5", "ana", "tie"), ("i6", "ana", "loss"),
          ("i1", "bo", "win"), ("i4", "bo", "loss"), ("i5", "bo", "win"),
          ("i1", "cy", "win"), ("i2", "cy", None)]
_JUDGE = {"i1": "win", "i2": "win", "i3": "loss", "i4": "loss", "i5": "tie", "i6": "win"}


def test_human_stats_match_hand_computed_values():
    from evalhub.stats.human import human_stats

    stats = human_stats(_HUMAN, {"j": _JUDGE})
    # item verdicts: i1 win (3 of 3), i2 win, i3 win, i4 loss (2 of 2), i5 tie (tie/win split), i6 loss
    assert (stats["n_votes"], stats["n_items"], stats["reviewers"]) == (10, 6, ["ana", "bo", "cy"])
    assert (stats["wins"], stats["losses"], stats["ties"]) == (3, 2, 1)
    assert stats["win_rate"] == pytest.approx(3.5 / 6)
    # Wilson, p = 7/12, n = 6, z = 1.959964: centre 0.550806, half-width 0.309727
    assert stats["win_rate_ci"] == pytest.approx([0.241079, 0.860533], abs=1e-5)
    # judge vs humans: agree on i1, i2, i4, i5 -> 4/6; both marginals (win 3, loss 2, tie 1) -> p_e = 14/36,
    # kappa = (24/36 - 14/36) / (22/36) = 5/11
    assert stats["judge_agreement"]["j"] == {"n": 6, "accuracy": pytest.approx(4 / 6), "kappa": pytest.approx(5 / 11)}
    # reviewers: i1 [w w w] P=1, i4 [l l] P=1, i5 [t w] P=0 -> P-bar 2/3; ratings w 4, l 2, t 1 of 7 ->
    # p_e = 21/49 = 3/7; kappa = (2/3 - 3/7) / (4/7) = 5/12
    assert stats["reviewer_agreement"] == {"n": 3, "raw": pytest.approx(2 / 3), "kappa": pytest.approx(5 / 12)}


def test_fleiss_unequal_equals_fleiss_when_every_item_has_as_many_ratings():
    from evalhub.stats.agreement import fleiss_kappa
    from evalhub.stats.human import fleiss_kappa_unequal

    ratings = [["win", "win", "tie"], ["loss", "loss", "loss"], ["tie", "win", "loss"], ["win", "win", "win"]]
    assert fleiss_kappa_unequal(ratings) == pytest.approx(fleiss_kappa(ratings, ("win", "loss", "tie")))


def test_item_verdict_is_the_majority_and_an_even_split_a_tie():
    from evalhub.stats.human import item_verdict

    assert item_verdict(["win", "win", "loss"]) == "win"
    assert item_verdict(["win", "loss"]) == "tie"
    assert item_verdict(["loss"]) == "loss"
    assert item_verdict([]) is None


def _six_item_run(run_id: str = "run-6"):
    """A compare run on six items whose judge gave _JUDGE's verdicts in both orders."""
    from dataclasses import replace

    from evalhub.records import Generation

    run = _run(run_id)
    generations, judgments = [], []
    for item, verdict in _JUDGE.items():
        generations += [("base", "g.jsonl", {"temperature": 0}, Generation(item, f"question {item}", f"base says {item}")),
                        ("tuned", "g.jsonl", {"temperature": 0}, Generation(item, f"question {item}", f"tuned says {item}"))]
        judgments += [{"golden_file": "g.jsonl", "item_id": item, "tuned_position": position, "judge": "reference",
                       "raw_reply": "{}", "status": "ok", "verdict": verdict, "reason": ""} for position in "AB"]
    return replace(run, generations=generations, judgments=judgments)


def _evalhub(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "evalhub", *map(str, args)], capture_output=True, text=True, timeout=120)


def _votes_file(path, run_id, rows):
    import json

    to_file = {"win": "candidate", "loss": "baseline", "tie": "tie"}
    path.write_text("".join(json.dumps({"run_id": run_id, "item_id": item, "reviewer": reviewer,
                                        "verdict": to_file[verdict]}) + "\n"
                            for item, reviewer, verdict in rows if verdict is not None))
    return path


def test_imported_votes_give_hand_computed_kappa_and_win_rate_and_export_round_trips(store, tmp_path):
    import json

    from evalhub.judge.calibrate import load_calibration

    save_run(_six_item_run(), store)
    votes = _votes_file(tmp_path / "votes.jsonl", "run-6", _HUMAN)
    done = _evalhub("review", "import", votes, "--db", store)
    assert done.returncode == 0, done.stderr
    assert "stored 10 votes" in done.stderr
    shown = _evalhub("show", "run-6", "--json", "--db", store)
    assert shown.returncode == 0, shown.stderr
    human = json.loads(shown.stdout)["human"]
    assert human["n_votes"] == 10 and human["reviewers"] == ["ana", "bo", "cy"]
    assert human["win_rate"] == pytest.approx(3.5 / 6)
    assert human["judge_agreement"]["reference"]["kappa"] == pytest.approx(5 / 11)
    assert human["judge_agreement"]["reference"]["accuracy"] == pytest.approx(4 / 6)
    assert human["reviewer_agreement"]["kappa"] == pytest.approx(5 / 12)

    out = tmp_path / "cal" / "team.jsonl"
    done = _evalhub("review", "export", "run-6", "--calibration", out, "--db", store)
    assert done.returncode == 0, done.stderr
    pairs = load_calibration(out)
    assert [(p.id, p.human, p.answer_a, p.answer_b) for p in pairs] == [
        (item, {"win": "A", "loss": "B", "tie": "tie"}[verdict], f"tuned says {item}", f"base says {item}")
        for item, verdict in zip(_JUDGE, ["win", "win", "win", "loss", "tie", "loss"])]


def test_import_with_an_unknown_item_names_file_line_and_stores_nothing(store, tmp_path):
    save_run(_six_item_run(), store)
    votes = _votes_file(tmp_path / "votes.jsonl", "run-6", [("i1", "ana", "win"), ("i2", "ana", "loss"),
                                                            ("nope", "ana", "tie")])
    done = _evalhub("review", "import", votes, "--db", store)
    assert done.returncode == 2
    assert f"{votes}:3: run run-6 has no item 'nope'" in done.stderr
    assert "Traceback" not in done.stderr
    assert votes_for_run("run-6", store) == []
    votes.write_text('{"run_id": "other", "item_id": "i1", "reviewer": "ana", "verdict": "tie"}\n')
    done = _evalhub("review", "import", votes, "--db", store)
    assert done.returncode == 2 and f"{votes}:1: no run 'other'" in done.stderr


def test_gate_holds_the_judge_to_the_runs_own_votes_once_there_are_enough(store, tmp_path):
    import json

    save_run(_six_item_run(), store)
    assert _evalhub("review", "import", _votes_file(tmp_path / "v.jsonl", "run-6", _HUMAN), "--db", store).returncode == 0

    def gate(*flags):
        out = tmp_path / f"gate-{len(list(tmp_path.iterdir()))}.json"
        done = _evalhub("gate", "run-6", "--db", store, "--json", out, *flags)
        return done, ({c["name"]: c for c in json.loads(out.read_text())["checks"]} if out.exists() else None)

    # 10 votes >= 5: the judge's kappa with the reviewers (5/11 = 0.4545) decides
    done, checks = gate("--min-judge-human-agreement", "0.45", "--min-human-votes", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert checks["min_judge_human_agreement"]["value"] == pytest.approx(5 / 11)
    assert "from the run's own 10 human votes" in checks["min_judge_human_agreement"]["detail"]
    done, checks = gate("--min-judge-human-agreement", "0.5", "--min-human-votes", "5")
    assert done.returncode == 1 and not checks["min_judge_human_agreement"]["passed"]
    # fewer votes than the default 30: the calibration file's result, and this judge was never calibrated
    done, checks = gate("--min-judge-human-agreement", "0.45")
    assert done.returncode == 1
    detail = checks["min_judge_human_agreement"]["detail"]
    assert "no calibration of" in detail and "10 human votes on the run, fewer than --min-human-votes 30" in detail
    # the humans' own verdict: 7/12 = 0.583
    done, checks = gate("--min-human-win-rate", "0.55")
    assert done.returncode == 0 and checks["min_human_win_rate"]["value"] == pytest.approx(7 / 12)
    done, checks = gate("--min-human-win-rate", "0.6")
    assert done.returncode == 1 and not checks["min_human_win_rate"]["passed"]


def test_gate_on_human_win_rate_without_votes_fails_naming_how_to_vote(tmp_path):
    db = tmp_path / "s.duckdb"
    save_run(_six_item_run(), db)
    done = _evalhub("gate", "run-6", "--db", db, "--min-human-win-rate", "0.5")
    assert done.returncode == 1
    assert "review import" in done.stdout + done.stderr
