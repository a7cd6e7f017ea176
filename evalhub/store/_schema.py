"""The store's schema, as an ordered list of migrations. Never edit a released migration: append one.

A store file records the highest applied version in `schema_version`; opening a store for writing applies
whatever is missing, in one transaction each.
"""

MIGRATIONS: list[str] = [
    # 1: the foundation: models, runs, generations, judgments, metrics.
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
        PRIMARY KEY (run_id, golden_file, item_id, tuned_position)
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
]
