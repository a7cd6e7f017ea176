"""The store's schema, as an ordered list of migrations. Never edit a released migration: append one.

A store file records the highest applied version in `schema_version`; opening a store for writing applies
whatever is missing, in one transaction each.
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
]
