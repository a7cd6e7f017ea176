"""What the leaderboard app reads, all of it read-only.

Each read opens one short-lived read-only connection (with `read_connection`'s bounded retry), takes what
the page needs in one go and closes, so a compare writing its run is never kept waiting for long and the
page sees one consistent state (on PostgreSQL, one snapshot that never blocks a writer).

The leaderboard aggregates in the database: it reads counts per run and golden set (`run_golden_sets`,
written with each run) and per model pair, not judge calls, so a page costs about the same at 1,000 runs
as at 10,000 (bench/app_reads.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from evalhub.contracts import RunSummary
from evalhub.errors import UserError
from evalhub.store._connect import has_table, read_connection
from evalhub.store._engine import database_errors
from evalhub.store._golden_sets import counts_for_older_store
from evalhub.store._location import StoreArg, location


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
class GoldenSetCounts:
    """A run's judged items on one golden set, both orders folded and counted in SQL as the run was written."""

    golden_file: str
    golden_key: str              # sha256 of the file as the run read it (its path when unrecorded)
    golden_sets: int             # how many golden sets the run judged
    wins: int
    ties: int
    losses: int
    unscored: int
    judge_calls: int
    cost_usd: float | None


@dataclass(frozen=True)
class ItemOrders:
    """One item's two judged orders (for a golden set's share of a run over several): verdicts with the tuned
    answer first and second, and both answers' lengths in characters."""

    item_id: str
    tuned_first: str | None
    tuned_second: str | None
    tuned_length: int
    base_length: int


@dataclass(frozen=True)
class LeaderboardRow:
    """One (run, golden set) of the table; `golden` is None for a run that judged no golden set. `items` are
    read only for runs over several golden sets, whose stored statistics cover all of them together."""

    run: StoredRun
    golden: GoldenSetCounts | None
    items: list[ItemOrders] | None = None


@dataclass(frozen=True)
class PairCounts:
    """Items of one golden set judged between a tuned model and its base, summed over the runs passing the
    filters: what a Bradley-Terry fit needs."""

    golden_key: str
    tuned_id: str
    base_id: str
    wins: int
    ties: int
    losses: int


@dataclass(frozen=True)
class LeaderboardFilter:
    """The runs a page shows. Empty tuples keep everything; a golden key None stands for runs that judged no
    golden set. Without `every_run`, only the newest run per tuned model and golden set is listed."""

    golden_keys: tuple[str | None, ...] = ()
    judges: tuple[str, ...] = ()              # a run without a judge is '–'
    base_ids: tuple[str, ...] = ()
    every_run: bool = False


@dataclass(frozen=True)
class LeaderboardData:
    """What the leaderboard draws, aggregated in the database: choices for the filters over every run, the
    table's rows, and outcome counts per model pair for the ranking."""

    models: dict[str, StoredModel]
    golden_sets: dict[str, str]        # golden key -> a path it was read from (for its name)
    judges: list[str]                  # '–' for runs without a judge
    base_ids: list[str]
    unjudged: bool                     # some run judged no golden set
    run_count: int
    rows: list[LeaderboardRow]         # newest first
    pairs: list[PairCounts]


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
    # the adapter's training.json as the trainer wrote it (golden_eval, task_eval, selection, ...); None when its
    # training was not recorded
    training_record: dict | None
    metrics: list[dict]           # stage, name, value, detail
    # (golden_file, item_id) -> ideal answer, as the run read it; empty for runs stored before schema 2
    ideal_answers: dict[tuple[str, str], str]


_RUN_COLUMNS = """
    r.run_id, r.kind, r.created_at, r.judge, r.golden, r.config -> 'inputs', r.summary,
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


def _query(db: StoreArg, read):
    """Run `read(con)` on a read-only connection; a file that is not an evalhub store is a user error."""
    where = location(db)
    with read_connection(where) as con:
        try:
            return read(con)
        except database_errors() as error:
            raise UserError(f"{where} is not an evalhub store ({str(error).splitlines()[0]}); "
                            "point the app at the store `evalhub compare --db` wrote") from None


def _where(filters: LeaderboardFilter) -> tuple[str, list]:
    clauses, params = [], []
    keys = [k for k in filters.golden_keys if k is not None]
    if filters.golden_keys:
        either = []
        if keys:
            either.append(f"g.golden_key IN ({', '.join('?' for _ in keys)})")
            params += keys
        if None in filters.golden_keys:
            either.append("g.golden_key IS NULL")
        clauses.append("(" + " OR ".join(either) + ")")
    if filters.judges:
        clauses.append(f"coalesce(r.judge, '–') IN ({', '.join('?' for _ in filters.judges)})")
        params += list(filters.judges)
    if filters.base_ids:
        clauses.append(f"r.base_model_id IN ({', '.join('?' for _ in filters.base_ids)})")
        params += list(filters.base_ids)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_GOLDEN_COLUMNS = "g.golden_file, g.golden_key, g.golden_sets, g.wins, g.ties, g.losses, g.unscored, g.judge_calls, g.cost_usd"
_ITEMS = """
SELECT i.run_id, i.golden_file, i.item_id, i.first, i.second,
       coalesce(length(t.output), 0), coalesce(length(b.output), 0)
FROM (
    SELECT run_id, golden_file, item_id,
           max(CASE WHEN tuned_position = 'A' AND status = 'ok' THEN verdict END) AS first,
           max(CASE WHEN tuned_position = 'B' AND status = 'ok' THEN verdict END) AS second
    FROM judgments WHERE NOT is_canary AND run_id IN ({runs})
    GROUP BY run_id, golden_file, item_id
) i
LEFT JOIN generations t ON t.run_id = i.run_id AND t.role = 'tuned' AND t.golden_file = i.golden_file AND t.item_id = i.item_id
LEFT JOIN generations b ON b.run_id = i.run_id AND b.role = 'base' AND b.golden_file = i.golden_file AND b.item_id = i.item_id
ORDER BY i.run_id, i.golden_file, i.item_id
"""


def _items(con, run_ids: list[str]) -> dict[tuple[str, str], list[ItemOrders]]:
    items: dict[tuple[str, str], list[ItemOrders]] = {}
    if run_ids:
        marks = ", ".join("?" for _ in run_ids)
        for run_id, golden_file, *item in con.execute(_ITEMS.format(runs=marks), run_ids).fetchall():
            items.setdefault((run_id, golden_file), []).append(ItemOrders(*item))
    return items


def read_leaderboard(db: StoreArg = None, filters: LeaderboardFilter | None = None) -> LeaderboardData:
    """The leaderboard, aggregated in the database in one read-only snapshot: the runs passing `filters` (the
    newest per tuned model and golden set unless `every_run`) with their per-golden-set counts, and outcome
    counts per model pair over every run passing the filters. No judge call is read, except the per-item
    verdicts of the listed runs that judged several golden sets."""
    filters = filters or LeaderboardFilter()

    def read(con) -> LeaderboardData:
        if "run_golden_sets" not in con.tables():
            counts_for_older_store(con)
        models = {row[0]: StoredModel(*row) for row in con.execute(
            "SELECT model_id, kind, path, adapter_hash FROM models").fetchall()}
        golden_sets = dict(con.execute(
            "SELECT golden_key, max(golden_file) FROM run_golden_sets GROUP BY golden_key").fetchall())
        choices = con.execute("SELECT coalesce(judge, '–'), base_model_id, CAST(count(*) AS BIGINT) FROM runs "
                              "GROUP BY coalesce(judge, '–'), base_model_id").fetchall()
        judges, base_ids = sorted({row[0] for row in choices}), sorted({row[1] for row in choices})
        run_count = sum(row[2] for row in choices)
        judged = con.execute("SELECT count(DISTINCT run_id) FROM run_golden_sets").fetchall()[0][0]
        unjudged = judged < run_count
        where, params = _where(filters)
        # Which (run, golden set) rows to list is decided on narrow columns; only those rows' details are read.
        listed = con.execute(
            "WITH picked AS (SELECT r.run_id, g.golden_file, row_number() OVER ("
            "PARTITION BY r.tuned_model_id, g.golden_key ORDER BY r.created_at DESC, r.run_id DESC) AS newest "
            f"FROM runs r LEFT JOIN run_golden_sets g ON g.run_id = r.run_id{where}) "
            f"SELECT {_RUN_COLUMNS}, {_GOLDEN_COLUMNS} FROM picked p JOIN runs r ON r.run_id = p.run_id "
            "JOIN models b ON b.model_id = r.base_model_id JOIN models t ON t.model_id = r.tuned_model_id "
            "LEFT JOIN run_golden_sets g ON g.run_id = p.run_id AND g.golden_file = p.golden_file"
            + ("" if filters.every_run else " WHERE p.newest = 1"), params).fetchall()
        n_run = len(_RUN_COLUMNS.split(","))
        several = sorted({row[0] for row in listed if row[n_run + 2] is not None and row[n_run + 2] > 1})
        items = _items(con, several)
        rows = []
        runs: dict[str, StoredRun] = {}
        for row in listed:
            run = runs.get(row[0]) or runs.setdefault(row[0], _run(row[:n_run]))
            golden = GoldenSetCounts(*row[n_run:n_run + 9]) if row[n_run] is not None else None
            rows.append(LeaderboardRow(run=run, golden=golden, items=(
                items.get((run.run_id, golden.golden_file), []) if golden and golden.golden_sets > 1 else None)))
        rows.sort(key=lambda r: (r.run.created_at, r.run.run_id), reverse=True)
        pairs = [PairCounts(*row) for row in con.execute(
            "SELECT g.golden_key, r.tuned_model_id, r.base_model_id, CAST(sum(g.wins) AS BIGINT), "
            "CAST(sum(g.ties) AS BIGINT), CAST(sum(g.losses) AS BIGINT) "
            f"FROM runs r JOIN run_golden_sets g ON g.run_id = r.run_id{where} "
            "GROUP BY g.golden_key, r.tuned_model_id, r.base_model_id "
            "ORDER BY g.golden_key, r.tuned_model_id, r.base_model_id", params).fetchall()]
        return LeaderboardData(models=models, golden_sets=golden_sets, judges=judges, base_ids=base_ids,
                               unjudged=bool(unjudged), run_count=run_count, rows=rows, pairs=pairs)

    return _query(db, read)


@dataclass(frozen=True)
class RunChoice:
    """A run as the run page's picker lists it."""

    run_id: str
    created_at: dt.datetime
    base_id: str
    tuned_id: str


def read_run_choices(db: StoreArg = None) -> list[RunChoice]:
    """Every run, newest first, with only what the run picker shows."""
    return _query(db, lambda con: [RunChoice(*row) for row in con.execute(
        "SELECT run_id, created_at, base_model_id, tuned_model_id FROM runs ORDER BY created_at DESC, run_id DESC"
    ).fetchall()])


def store_state(db: StoreArg = None) -> tuple:
    """Changes whenever a writer commits, so the app's cached reads are refreshed after a run lands and reused
    otherwise: a store file's (and its write-ahead log's) size and time; a database's run count and newest
    run."""
    where = location(db)
    if where.path is not None:
        files = [where.path, where.path.with_name(where.path.name + ".wal")]
        return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None for f in files)
    return _query(where, lambda con: tuple(con.execute(
        "SELECT count(*), max(created_at), (SELECT count(*) FROM training_runs) FROM runs").fetchall()[0]))


def read_run(run_id: str, db: StoreArg = None) -> RunDetail:
    """One run with its settings, judge calls, answers, benchmark and perplexity rows, and its adapter's training
    curve and record."""

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
        training = con.execute("SELECT method, config FROM training_runs WHERE adapter_hash = ?",
                               [run.tuned.adapter_hash]).fetchone()
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
                         training_record=json.loads(training[1]) if training and training[1] else None, metrics=metrics, ideal_answers=ideal)

    return _query(db, read)
