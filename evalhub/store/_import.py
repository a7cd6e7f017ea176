"""`evalhub import`: copy runs from DuckDB store files, Parquet export folders (and PostgreSQL stores) into
any store.

Idempotent by run id: a run the target already holds is skipped, so CI artifacts can be gathered into the
team store again and again. Arenas come along the same way, idempotent by their run id. Every table keyed
by run_id comes along with its runs and arenas (judgments, arena judgments, generations, golden items,
metrics, benchmarks, tags, ...); tables that are not (models, training runs and curves) are
merged, keeping the target's rows. Everything is written in one transaction: a failed import adds nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from evalhub.errors import UserError
from evalhub.store._connect import read_connection, write_connection
from evalhub.store._engine import Connection
from evalhub.store._golden_sets import record_golden_sets
from evalhub.store._location import StoreArg, is_postgres_url, location

SKIPPED_TABLES = {"schema_version", "run_golden_sets"}  # bookkeeping, and a table rebuilt from the runs' rows
_CHUNK = 500


@dataclass
class ImportResult:
    imported: list[str] = field(default_factory=list)      # run ids added to the target
    already: list[str] = field(default_factory=list)       # run ids the target held before
    arenas_imported: list[str] = field(default_factory=list)  # arena run ids added to the target
    arenas_already: list[str] = field(default_factory=list)   # arena run ids the target held before
    # (source, new runs, new arenas), one entry per source as given: a source named twice is listed twice
    per_source: list[tuple[str, int, int]] = field(default_factory=list)


@contextlib.contextmanager
def _open_source(source: Path | str) -> Iterator[Connection]:
    """A source as a read-only connection: a store file or database directly, an export folder as DuckDB
    views over its Parquet files."""
    import duckdb

    if isinstance(source, str):  # a PostgreSQL store
        with read_connection(source) as con:
            yield con
    elif source.is_dir():
        files = sorted(source.glob("*.parquet"))
        if not (source / "runs.parquet").is_file():
            raise UserError(f"{source}: not an evalhub export (no runs.parquet); pass a folder written by "
                            "`evalhub export RUN|all --parquet DIR` or a store file")
        raw = duckdb.connect()
        try:
            for file in files:
                escaped = str(file).replace("'", "''")
                raw.execute(f'CREATE VIEW "{file.stem}" AS SELECT * FROM read_parquet(\'{escaped}\')')
        except duckdb.Error as error:
            raw.close()
            raise UserError(f"{source}: cannot read its Parquet files ({str(error).splitlines()[0]}); "
                            "export the runs again") from None
        con = Connection(raw, "duckdb", location(source / "runs.parquet"))
        try:
            yield con
        finally:
            con.close()
    elif source.is_file():
        with read_connection(source) as con:
            yield con
    else:
        raise UserError(f"{source}: no such store file or export folder; pass a .duckdb file or an "
                        "`evalhub export` folder")


def _name(source: Path | str) -> str:
    return str(location(source)) if isinstance(source, str) else str(source)


def _copy_table(source: Connection, target: Connection, table: str, columns: list[str], run_ids: list[str]) -> None:
    names = ", ".join(columns)
    if "run_id" in columns:
        for start in range(0, len(run_ids), _CHUNK):
            chunk = run_ids[start:start + _CHUNK]
            rows = source.execute(f"SELECT {names} FROM {table} WHERE run_id IN ({', '.join('?' for _ in chunk)})",
                                  chunk).fetchall()
            target.insert_rows(table, columns, rows)
    else:
        rows = source.execute(f"SELECT {names} FROM {table}").fetchall()
        target.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)}) "
                           "ON CONFLICT DO NOTHING", rows)


def import_runs(sources: list[Path | str], db: StoreArg = None) -> ImportResult:
    """Copy every run and arena of `sources` that the store `db` lacks, with all their rows, in one transaction."""
    target_where = location(db)
    sources = [str(s) if is_postgres_url(str(s)) else Path(s) for s in sources]
    for source in sources:
        if str(source) == str(target_where.url) or (
                target_where.path is not None and isinstance(source, Path) and source.exists()
                and source.resolve() == target_where.path.resolve()):
            raise UserError(f"{_name(source)} is the target store itself; pass another --db")
        with _open_source(source) as con:  # every source checked before anything is written
            con.execute("SELECT count(*) FROM runs").fetchall()
    result = ImportResult()
    with write_connection(target_where) as target:
        target_tables = target.tables()
        seen = {row[0] for row in target.execute("SELECT run_id FROM runs").fetchall()}
        seen_arenas = {row[0] for row in target.execute("SELECT run_id FROM arenas").fetchall()} \
            if "arenas" in target_tables else set()
        for source in sources:
            with _open_source(source) as con:
                ids = [row[0] for row in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
                new = [run_id for run_id in ids if run_id not in seen]
                result.already += [run_id for run_id in ids if run_id in seen and run_id not in result.imported
                                   and run_id not in result.already]
                # An arena's rows (its models, pairs, judge calls, generations, golden items) are keyed by the
                # arena's run_id, which `runs` does not hold: they come along with the arena.
                arena_ids = [row[0] for row in con.execute("SELECT run_id FROM arenas ORDER BY run_id").fetchall()] \
                    if "arenas" in con.tables() and "arenas" in target_tables else []
                new_arenas = [run_id for run_id in arena_ids if run_id not in seen_arenas]
                result.arenas_already += [run_id for run_id in arena_ids if run_id in seen_arenas
                                          and run_id not in result.arenas_imported and run_id not in result.arenas_already]
                result.per_source.append((_name(source), len(new), len(new_arenas)))
                # Tables both sides have (an export's Parquet files are views), columns matched by name.
                for table in sorted((con.tables() & target_tables) - SKIPPED_TABLES):
                    wanted = set(target.columns(table))
                    columns = [c for c in con.columns(table) if c in wanted]
                    if columns and ("run_id" not in columns or new + new_arenas):
                        _copy_table(con, target, table, columns, new + new_arenas)
                record_golden_sets(target, new)
                seen.update(new)
                seen_arenas.update(new_arenas)
                result.imported += new
                result.arenas_imported += new_arenas
    return result
