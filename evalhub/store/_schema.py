"""The store's schema, as an ordered list of migrations. Never edit a released migration: append one.

A store records the highest applied version in `schema_version`; opening a store for writing applies
whatever is missing, in one transaction each.

The same list builds a DuckDB file and a PostgreSQL database (store/_engine.py applies it to both). To stay
portable, a new migration:
  - uses types both engines know: VARCHAR, INTEGER, BIGINT, DOUBLE (written as DOUBLE PRECISION for
    PostgreSQL by the engine layer), BOOLEAN, TIMESTAMP, JSON; defaults: constants or current_timestamp;
  - is plain DDL (CREATE TABLE / CREATE INDEX / ALTER TABLE ADD COLUMN ...), statements separated by `;`, with
    no engine-specific syntax (no CREATE SEQUENCE tricks, no DuckDB macros, no PostgreSQL SERIAL, no
    IF NOT EXISTS needed: a migration runs exactly once);
  - keys rows by run_id (a column named run_id) when they belong to one run, so `evalhub import` and
    `evalhub export` carry them with their run, and gives every table a PRIMARY KEY (import skips rows whose
    key the target already holds);
  - needs no data rewrite in SQL; a new table to fill from older runs gets a Python step in
    store/_connect.py's BACKFILLS, run in the migration's transaction.
Test a new migration on both engines: tests/test_store.py runs against DuckDB and a real PostgreSQL server.
"""

MIGRATIONS: list[str] = [
    # 1: models, runs, generations, judgments, metrics, perplexity, benchmarks, training curves.
    """
    CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp);
    CREATE TABLE models (
        model_id VARCHAR PRIMARY KEY,      -- content hash of what defines the model (path + hashes)
        kind VARCHAR NOT NULL,             -- 'base', 'adapter', 'full', 'served'
        path VARCHAR NOT NULL,
        base_path VARCHAR,
        adapter_hash VARCHAR,
        base_hash VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,             -- 'compare', 'demo'
        status VARCHAR NOT NULL,           -- 'complete' (a run is only written whole)
        created_at TIMESTAMP NOT NULL,
        base_model_id VARCHAR NOT NULL,
        tuned_model_id VARCHAR NOT NULL,
        judge VARCHAR,
        golden JSON,                       -- list of golden set files
        config JSON NOT NULL,              -- the full configuration, with library versions
        summary JSON NOT NULL              -- the `--json` summary
    );
    CREATE TABLE generations (
        run_id VARCHAR NOT NULL,
        role VARCHAR NOT NULL,             -- 'base' or 'tuned'
        model_id VARCHAR NOT NULL,
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        prompt VARCHAR NOT NULL,
        output VARCHAR,
        status VARCHAR NOT NULL,           -- 'ok' or 'failed'
        reason VARCHAR,
        settings JSON NOT NULL,            -- decoding settings, stored with every generation
        PRIMARY KEY (run_id, role, golden_file, item_id)
    );
    CREATE TABLE judgments (
        run_id VARCHAR NOT NULL,
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        tuned_position VARCHAR NOT NULL,   -- 'A' or 'B': where the tuned answer stood in this call
        judge VARCHAR NOT NULL,
        raw_reply VARCHAR,
        status VARCHAR NOT NULL,           -- 'ok', 'parse_fail', 'api_error'
        verdict VARCHAR,                   -- from the tuned model's side: 'win', 'loss', 'tie'; NULL unless ok
        reason VARCHAR,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd DOUBLE,
        is_canary BOOLEAN NOT NULL DEFAULT false,
        PRIMARY KEY (run_id, golden_file, item_id, tuned_position)
    );
    CREATE TABLE perplexity (
        run_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,          -- the NAME of --perplexity-data NAME=FILE
        role VARCHAR NOT NULL,             -- 'base' or 'tuned'
        perplexity DOUBLE NOT NULL,
        bits_per_byte DOUBLE NOT NULL,
        tokens BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        settings JSON,
        PRIMARY KEY (run_id, dataset, role)
    );
    CREATE TABLE benchmarks (
        run_id VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,           -- the primary metric, 'acc' for multiple choice
        base DOUBLE, tuned DOUBLE, delta DOUBLE, ci_lo DOUBLE, ci_hi DOUBLE, p_value DOUBLE,
        forgetting BOOLEAN NOT NULL,
        base_acc_norm DOUBLE, tuned_acc_norm DOUBLE,
        n INTEGER,
        task_version VARCHAR,
        lm_eval_version VARCHAR,
        settings JSON,                     -- batch size, num_fewshot, seeds, limit, backend, ...
        newly_wrong JSON,                  -- ids of items the tuned model newly gets wrong
        PRIMARY KEY (run_id, task)
    );
    CREATE TABLE benchmark_items (
        run_id VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        doc_id VARCHAR NOT NULL,
        base_correct DOUBLE, tuned_correct DOUBLE,
        base_acc_norm DOUBLE, tuned_acc_norm DOUBLE,
        PRIMARY KEY (run_id, task, doc_id)
    );
    CREATE TABLE training_runs (
        adapter_hash VARCHAR PRIMARY KEY,  -- sha256 of adapter_model.safetensors, as in models.adapter_hash
        path VARCHAR NOT NULL,
        method VARCHAR NOT NULL,           -- 'sft', 'dpo'
        config JSON NOT NULL,              -- training.json: config, seeds, versions, data hashes, final metrics
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE training_curves (
        adapter_hash VARCHAR NOT NULL,
        step INTEGER NOT NULL,
        split VARCHAR NOT NULL,            -- 'train' or 'eval'
        loss DOUBLE NOT NULL,
        PRIMARY KEY (adapter_hash, step, split)
    );
    CREATE TABLE metrics (
        run_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,            -- 'judge', 'perplexity', 'benchmark', 'training', ...
        name VARCHAR NOT NULL,
        value DOUBLE,
        detail JSON,
        PRIMARY KEY (run_id, stage, name)
    );
    """,
    # 2: the golden items each run judged, so a run's ideal answers travel with the store (a store copied off
    # the machine that wrote it, e.g. a CI artifact, still shows them).
    """
    CREATE TABLE golden_items (
        run_id VARCHAR NOT NULL,
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        instruction VARCHAR NOT NULL,
        input VARCHAR,
        output VARCHAR NOT NULL,           -- the ideal answer
        tags JSON,
        PRIMARY KEY (run_id, golden_file, item_id)
    );
    """,
    # 3: each run's judged items per golden set, folded (both orders) and counted in SQL when the run is
    # written, so the leaderboard and ranking read counts per run and per model pair instead of every judge call.
    """
    CREATE TABLE run_golden_sets (
        run_id VARCHAR NOT NULL,
        golden_file VARCHAR NOT NULL,
        golden_key VARCHAR NOT NULL,       -- sha256 of the golden file as the run read it (its path if unrecorded)
        position INTEGER NOT NULL,         -- its place in the run's list of golden sets
        golden_sets INTEGER NOT NULL,      -- how many golden sets the run judged
        wins INTEGER NOT NULL,             -- items, from the tuned model's side, both orders folded
        ties INTEGER NOT NULL,
        losses INTEGER NOT NULL,
        unscored INTEGER NOT NULL,         -- items an order of which gave no verdict
        judge_calls INTEGER NOT NULL,      -- canaries included
        cost_usd DOUBLE,
        PRIMARY KEY (run_id, golden_file)
    );
    CREATE INDEX run_golden_sets_key ON run_golden_sets (golden_key);
    """,
    # 4: tags naming deployed models (`evalhub tag`), and arenas: many models judged pair by pair, with their
    # ratings, pairwise results and every judge call (`evalhub arena`). An arena's generations go to
    # `generations` and its golden items to `golden_items`, keyed by the arena's run_id (role: the model's name).
    """
    CREATE TABLE tags (
        name VARCHAR PRIMARY KEY,
        model_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,             -- 'base', 'adapter', 'full'
        path VARCHAR NOT NULL,
        base_path VARCHAR,                 -- an adapter's base, as it was found when tagged
        weights_hash VARCHAR NOT NULL,     -- the adapter file's sha256, or the model folder's fingerprint
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE arenas (
        run_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMP NOT NULL,
        judge VARCHAR,
        golden JSON,                       -- list of golden set files
        anchor VARCHAR,                    -- the model every other was judged against, or NULL: every pair
        config JSON NOT NULL,              -- the full configuration, with library versions
        summary JSON NOT NULL              -- the `--json` summary
    );
    CREATE TABLE arena_models (
        run_id VARCHAR NOT NULL,
        model VARCHAR NOT NULL,            -- the model's name in the arena (its argument)
        model_id VARCHAR NOT NULL,
        position INTEGER NOT NULL,         -- its place on the command line
        rating DOUBLE,                     -- Bradley-Terry, Elo scale
        ci_lo DOUBLE,
        ci_hi DOUBLE,
        rank INTEGER,
        comparisons INTEGER NOT NULL,
        PRIMARY KEY (run_id, model)
    );
    CREATE TABLE arena_pairs (
        run_id VARCHAR NOT NULL,
        a VARCHAR NOT NULL,
        b VARCHAR NOT NULL,
        wins INTEGER NOT NULL,             -- items, from a's side, both orders folded
        losses INTEGER NOT NULL,
        ties INTEGER NOT NULL,
        unscored INTEGER NOT NULL,
        win_rate DOUBLE,
        ci_lo DOUBLE,
        ci_hi DOUBLE,
        p_value DOUBLE,
        p_holm DOUBLE,
        significant BOOLEAN NOT NULL,
        PRIMARY KEY (run_id, a, b)
    );
    CREATE TABLE arena_judgments (
        run_id VARCHAR NOT NULL,
        a VARCHAR NOT NULL,
        b VARCHAR NOT NULL,
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        a_position VARCHAR NOT NULL,       -- 'A' or 'B': where a's answer stood in this call
        judge VARCHAR NOT NULL,
        raw_reply VARCHAR,
        status VARCHAR NOT NULL,
        verdict VARCHAR,                   -- from a's side: 'win', 'loss', 'tie'; NULL unless ok
        reason VARCHAR,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd DOUBLE,
        is_canary BOOLEAN NOT NULL DEFAULT false,
        PRIMARY KEY (run_id, a, b, golden_file, item_id, a_position)
    );
    """,
    # 5: judge panels and calibration. A verdict's weight (Arena-Hard's strong verdicts weigh 3 in
    # Bradley-Terry); every judge's calls of a panel run (its `judgments` rows are then the panel's verdicts);
    # and each `evalhub judge calibrate` against human labels, with its summary.
    """
    ALTER TABLE judgments ADD COLUMN weight INTEGER;
    CREATE TABLE panel_judgments (
        run_id VARCHAR NOT NULL,
        judge VARCHAR NOT NULL,            -- one judge of the run's panel
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        tuned_position VARCHAR NOT NULL,   -- 'A' or 'B'
        raw_reply VARCHAR,
        status VARCHAR NOT NULL,           -- 'ok', 'parse_fail', 'api_error'
        verdict VARCHAR,                   -- from the tuned model's side; NULL unless ok
        reason VARCHAR,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd DOUBLE,
        is_canary BOOLEAN NOT NULL DEFAULT false,
        weight INTEGER,
        PRIMARY KEY (run_id, judge, golden_file, item_id, tuned_position)
    );
    CREATE TABLE judge_calibrations (
        calibration_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMP NOT NULL,
        judge VARCHAR NOT NULL,
        endpoint VARCHAR,                  -- the judge's base URL, when one was given
        protocol VARCHAR NOT NULL,
        protocol_hash VARCHAR NOT NULL,
        calibration_file VARCHAR NOT NULL,
        file_hash VARCHAR NOT NULL,
        n INTEGER NOT NULL,
        accuracy DOUBLE,
        kappa DOUBLE,
        position_consistency DOUBLE,
        summary JSON NOT NULL              -- the `judge calibrate --json` document
    );
    CREATE INDEX judge_calibrations_judge ON judge_calibrations (judge, protocol_hash);
    """,
    # 6: per-item measurements of any stage, in one generic table, so a new per-answer metric (a length, a
    # toxicity score, a reward) needs no migration of its own: one row per run, stage, metric, model role and
    # golden item. `role` is the model the value belongs to ('base', 'tuned', or an arena's model name).
    """
    CREATE TABLE item_metrics (
        run_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,            -- the stage that measured it (its Stage.name)
        name VARCHAR NOT NULL,             -- the metric
        role VARCHAR NOT NULL,
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        value DOUBLE,                      -- NULL: the stage could not measure this item
        detail JSON,
        PRIMARY KEY (run_id, stage, name, role, golden_file, item_id)
    );
    """,
    # 7: blind human review (the app's Review page, `evalhub review import`): one row per run (or arena pair),
    # golden file, item and reviewer; a new vote replaces the old one. `verdict` is from the candidate's side
    # (the tuned model, or an arena pair's model `a`), like judgments.verdict; NULL: the reviewer skipped it.
    """
    CREATE TABLE human_votes (
        run_id VARCHAR NOT NULL,
        pair VARCHAR NOT NULL,             -- '' for a compare run; 'a|b' (models by name) for an arena pair
        golden_file VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        reviewer VARCHAR NOT NULL,
        verdict VARCHAR,                   -- 'win', 'loss', 'tie' from the candidate's side; NULL: skipped
        shown_first VARCHAR,               -- 'candidate' or 'baseline': the answer shown as "Answer 1"
        note VARCHAR,
        voted_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, pair, golden_file, item_id, reviewer)
    );
    """,
]
