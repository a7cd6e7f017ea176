"""Parquet export of runs, for a warehouse."""

from __future__ import annotations

from pathlib import Path

from evalhub.errors import UserError
from evalhub.store._connect import has_table, read_connection

RUN_TABLES = ("runs", "generations", "judgments", "metrics", "perplexity", "benchmarks", "benchmark_items",
              "golden_items")


def export_parquet(run_id: str, out_dir: Path, db: Path | None = None) -> list[Path]:
    """Write one Parquet file per table, holding `run_id`'s rows (or every run's, for 'all')."""
    import shutil

    import pyarrow.parquet as pq

    written = []
    # Written into a staging folder beside the target and moved into place whole: a failed export leaves
    # nothing behind, not a folder of some tables.
    staging = out_dir.parent / f".{out_dir.name}.partial"
    with read_connection(db) as con:
        if run_id != "all" and not con.sql("SELECT count(*) FROM runs WHERE run_id = ?", params=[run_id]).fetchall()[0][0]:
            raise UserError(f"no run {run_id!r} in the store; `evalhub runs` lists them")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for table in (*RUN_TABLES, "models", "training_runs", "training_curves"):
            if not has_table(con, table):  # a store written before the table existed (read-only: not migrated)
                continue
            target = staging / f"{table}.parquet"
            if run_id == "all" or table not in RUN_TABLES:
                query = f"SELECT * FROM {table}"
                params: list = []
            else:
                query, params = f"SELECT * FROM {table} WHERE run_id = ?", [run_id]
            # Through Arrow, since COPY ... TO is refused on a read-only connection.
            pq.write_table(con.sql(query, params=params or None).to_arrow_table(), target)
            written.append(out_dir / target.name)
    if out_dir.is_dir():
        out_dir.rmdir()  # the caller checked it is empty
    staging.rename(out_dir)
    return written
