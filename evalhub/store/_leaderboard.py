"""What the leaderboard app reads, all of it read-only.

Each read opens one short-lived read-only connection (with `read_connection`'s bounded retry), takes what
the page needs in one go and closes, so a compare writing its run is never kept waiting for long and the
page sees one consistent state.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from evalhub.contracts import RunSummary
from evalhub.errors import UserError
from evalhub.store._connect import default_db_path, has_table, read_connection


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    kind: str                    # 'base', 'adapter', 'full', 'served'
    path: str
    adapter_hash: str | None


@dataclass(frozen=True)
class StoredRun:
    """One run as the leaderboard lists it; `summary` is the typed run summary."""

    run_id: str
    kind: str
    created_at: dt.datetime
    judge: str | None
    golden: list[str]
    input_hashes: dict[str, str]  # sha256 of each input file (golden sets among them) when the run started
    base: StoredModel
    tuned: StoredModel
    summary: RunSummary


@dataclass(frozen=True)
class StoredJudgment:
    """One judge call: an item judged with the tuned answer in `tuned_position`; `verdict` is the tuned side's."""

    run_id: str
    golden_file: str
    item_id: str
    tuned_position: str
    judge: str
    status: str                  # 'ok', 'parse_fail', 'api_error'
    verdict: str | None          # 'win', 'loss', 'tie'; None unless status is 'ok'
    reason: str | None
    raw_reply: str | None
    cost_usd: float | None
    is_canary: bool


@dataclass(frozen=True)
class StoredGeneration:
    role: str                    # 'base' or 'tuned'
    golden_file: str
    item_id: str
    prompt: str
    output: str | None
    status: str                  # 'ok' or 'failed'
    reason: str | None


@dataclass(frozen=True)
class LeaderboardData:
    runs: list[StoredRun]
    judgments: list[StoredJudgment]   # raw replies left out: the leaderboard only counts verdicts
    # characters of each answer, keyed (run_id, golden_file, item_id, role): the length-controlled win rate needs them
    answer_lengths: dict[tuple[str, str, str, str], int]


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows. Table-shaped parts are lists of dicts keyed by column name."""

    run: StoredRun
    config: dict
    judgments: list[StoredJudgment]
    generations: list[StoredGeneration]
    benchmarks: list[dict]        # task, metric, base, tuned, delta, ci_lo, ci_hi, p_value, forgetting, n, ...
    perplexity: list[dict]        # dataset, role, perplexity, bits_per_byte, tokens, bytes
    training_curve: list[dict]    # step, split, loss of the tuned adapter, when its training was recorded
    training_method: str | None
    metrics: list[dict]           # stage, name, value, detail
    # (golden_file, item_id) -> ideal answer, as the run read it; empty for runs stored before schema 2
    ideal_answers: dict[tuple[str, str], str]


_RUN_COLUMNS = """
    r.run_id, r.kind, r.created_at, r.judge, r.golden, json_extract(r.config, '$.inputs'), r.summary,
    b.model_id, b.kind, b.path, b.adapter_hash, t.model_id, t.kind, t.path, t.adapter_hash
"""
_RUN_FROM = "FROM runs r JOIN models b ON b.model_id = r.base_model_id JOIN models t ON t.model_id = r.tuned_model_id"
_JUDGMENT_COLUMNS = ("run_id, golden_file, item_id, tuned_position, judge, status, verdict, reason, {raw}, "
                     "cost_usd, is_canary")


def _run(row: tuple) -> StoredRun:
    run_id, kind, created_at, judge, golden, inputs, summary, *models = row
    base, tuned = StoredModel(*models[:4]), StoredModel(*models[4:])
    return StoredRun(run_id=run_id, kind=kind, created_at=created_at, judge=judge,
                     golden=json.loads(golden) if golden else [], input_hashes=json.loads(inputs) if inputs else {},
                     summary=RunSummary.from_stored(json.loads(summary), run_id, base.path, tuned.path),
                     base=base, tuned=tuned)


def _dicts(cursor) -> list[dict]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _query(db: Path | None, read):
    """Run `read(con)` on a read-only connection; a file that is not an evalhub store is a user error."""
    import duckdb

    db = Path(db) if db else default_db_path()
    with read_connection(db) as con:
        try:
            return read(con)
        except duckdb.CatalogException as error:
            raise UserError(f"{db} is not an evalhub store ({str(error).splitlines()[0]}); "
                            "point the app at the file `evalhub compare --db` wrote") from None


def read_leaderboard(db: Path | None = None) -> LeaderboardData:
    """Every run (newest first) and every judge call's verdict, read in one connection."""

    def read(con) -> LeaderboardData:
        runs = [_run(row) for row in con.execute(f"SELECT {_RUN_COLUMNS} {_RUN_FROM} ORDER BY r.created_at DESC, r.run_id").fetchall()]
        judgments = [StoredJudgment(*row) for row in con.execute(
            f"SELECT {_JUDGMENT_COLUMNS.format(raw='NULL')} FROM judgments ORDER BY run_id, golden_file, item_id, tuned_position"
        ).fetchall()]
        lengths = {(run_id, golden_file, item_id, role): length for run_id, golden_file, item_id, role, length in con.execute(
            "SELECT run_id, golden_file, item_id, role, coalesce(length(output), 0) FROM generations").fetchall()}
        return LeaderboardData(runs=runs, judgments=judgments, answer_lengths=lengths)

    return _query(db, read)


def read_run(run_id: str, db: Path | None = None) -> RunDetail:
    """One run with its settings, judge calls, answers, benchmark and perplexity rows and training curve."""

    def read(con) -> RunDetail:
        row = con.execute(f"SELECT {_RUN_COLUMNS}, r.config {_RUN_FROM} WHERE r.run_id = ?", [run_id]).fetchone()
        if row is None:
            raise UserError(f"no run {run_id!r} in the store; pick one from the leaderboard")
        run, config = _run(row[:-1]), json.loads(row[-1])
        judgments = [StoredJudgment(*r) for r in con.execute(
            f"SELECT {_JUDGMENT_COLUMNS.format(raw='raw_reply')} FROM judgments WHERE run_id = ? "
            "ORDER BY golden_file, item_id, tuned_position", [run_id]).fetchall()]
        generations = [StoredGeneration(*r) for r in con.execute(
            "SELECT role, golden_file, item_id, prompt, output, status, reason FROM generations WHERE run_id = ? "
            "ORDER BY golden_file, item_id, role", [run_id]).fetchall()]
        benchmarks = _dicts(con.execute(
            "SELECT task, metric, base, tuned, delta, ci_lo, ci_hi, p_value, forgetting, n, task_version, lm_eval_version "
            "FROM benchmarks WHERE run_id = ? ORDER BY task", [run_id]))
        perplexity = _dicts(con.execute(
            "SELECT dataset, role, perplexity, bits_per_byte, tokens, bytes FROM perplexity WHERE run_id = ? "
            "ORDER BY dataset, role", [run_id]))
        # The tuned adapter's training, matched by the hash of its weights (the same adapter under any path).
        training = con.execute("SELECT method FROM training_runs WHERE adapter_hash = ?", [run.tuned.adapter_hash]).fetchone()
        curve = _dicts(con.execute(
            "SELECT step, split, loss FROM training_curves WHERE adapter_hash = ? ORDER BY split, step",
            [run.tuned.adapter_hash]))
        metrics = _dicts(con.execute(
            "SELECT stage, name, value, detail FROM metrics WHERE run_id = ? ORDER BY stage, name", [run_id]))
        for metric in metrics:
            metric["detail"] = json.loads(metric["detail"]) if metric["detail"] else None
        ideal = {}
        if has_table(con, "golden_items"):  # a read-only reader never migrates an older store
            ideal = {(golden_file, item_id): output for golden_file, item_id, output in con.execute(
                "SELECT golden_file, item_id, output FROM golden_items WHERE run_id = ?", [run_id]).fetchall()}
        return RunDetail(run=run, config=config, judgments=judgments, generations=generations, benchmarks=benchmarks,
                         perplexity=perplexity, training_curve=curve, training_method=training[0] if training else None,
                         metrics=metrics, ideal_answers=ideal)

    return _query(db, read)
