"""Parquet export of runs, for a warehouse or for `evalhub import` into another store."""

from __future__ import annotations

from pathlib import Path

from evalhub.errors import UserError
from evalhub.store._connect import read_connection
from evalhub.store._location import StoreArg

# Bookkeeping, and tables derived from others (rebuilt by whoever reads the export back).
NOT_EXPORTED = {"schema_version", "run_golden_sets"}


def _arrow(con, query: str, params: list):
    """A query's result as an Arrow table (DuckDB hands Arrow over; PostgreSQL rows are converted)."""
    import pyarrow as pa

    if not con.is_postgres:
        return con.raw.sql(query, params=params or None).to_arrow_table()
    cursor = con.execute(query, params or None)
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})


def export_parquet(run_id: str, out_dir: Path, db: StoreArg = None) -> list[Path]:
    """Write one Parquet file per table: `run_id`'s rows of the tables keyed by run (every run's, for 'all'),
    and the whole of the others (models, training runs and curves)."""
    import shutil

    import pyarrow.parquet as pq

    written = []
    # Written into a staging folder beside the target and moved into place whole: a failed export leaves
    # nothing behind, not a folder of some tables.
    staging = out_dir.parent / f".{out_dir.name}.partial"
    with read_connection(db) as con:
        if run_id != "all" and not con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]:
            raise UserError(f"no run {run_id!r} in the store; `evalhub runs` lists them")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        # Every table the store has (an older store, read-only and not migrated, has fewer).
        for table in sorted(con.tables() - NOT_EXPORTED):
            target = staging / f"{table}.parquet"
            if run_id == "all" or "run_id" not in con.columns(table):
                query, params = f"SELECT * FROM {table}", []
            else:
                query, params = f"SELECT * FROM {table} WHERE run_id = ?", [run_id]
            # Through Arrow, since COPY ... TO is refused on a read-only connection.
            pq.write_table(_arrow(con, query, params), target)
            written.append(out_dir / target.name)
    if out_dir.is_dir():
        out_dir.rmdir()  # the caller checked it is empty
    staging.rename(out_dir)
    return written
