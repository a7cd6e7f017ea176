"""`evalhub import SOURCE... [--db TARGET]`: gather runs from store files and export folders into one store;
`evalhub migrate [--db]`: create or upgrade a store's schema (on a team database, as its owner).

(Not named cli/import.py: `import` is a Python keyword.)
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app


@app.command("import")
def import_command(
    sources: List[str] = typer.Argument(..., metavar="SOURCE...",
                                        help="DuckDB store files, `evalhub export` Parquet folders or PostgreSQL URLs."),
    db: Optional[str] = shared.DB,
) -> None:
    """Copy the runs and arenas of SOURCE... that the store lacks, with everything each carries (judgments,
    arena judgments, generations, golden items, metrics, curves, tags). Idempotent by run id; all or nothing."""
    from evalhub.store import import_runs

    target = shared.resolve_db(db)
    result = import_runs(sources, target)
    for source, count, arenas in result.per_source:
        new_arenas = ", " + _count(arenas, "new arena") if arenas else ""
        print(f"{source}: {_count(count, 'new run')}{new_arenas}", file=sys.stderr)
    held = len(result.already) + len(result.arenas_already)
    already = f"; {held} already in the store" if held else ""
    if result.imported or result.arenas_imported:
        what = [_count(len(result.imported), "run")] if result.imported else []
        what += [_count(len(result.arenas_imported), "arena")] if result.arenas_imported else []
        print(f"imported {' and '.join(what)} into {target}{already}")
    else:
        print(f"nothing to import: every run and arena is already in {target}{already}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


@app.command("migrate")
def migrate_command(db: Optional[str] = shared.DB) -> None:
    """Create the store's tables, or upgrade them to this evalhub's schema. Writers do it on first use; on a
    team database whose CI role may only insert, the owner runs this once per evalhub upgrade."""
    from evalhub.store import migrate

    target = shared.resolve_db(db)
    print(f"the store {target} is at schema {migrate(target)}")
