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
    """Copy the runs of SOURCE... that the store lacks, with everything each run carries (judgments,
    generations, golden items, metrics, curves, tags). Idempotent by run id; all or nothing."""
    from evalhub.store import import_runs

    target = shared.resolve_db(db)
    result = import_runs(sources, target)
    for source, count in result.per_source.items():
        print(f"{source}: {count} new run{'s' if count != 1 else ''}", file=sys.stderr)
    already = f"; {len(result.already)} already in the store" if result.already else ""
    if result.imported:
        print(f"imported {len(result.imported)} run{'s' if len(result.imported) != 1 else ''} into {target}{already}")
    else:
        print(f"nothing to import: every run is already in {target}{already}")


@app.command("migrate")
def migrate_command(db: Optional[str] = shared.DB) -> None:
    """Create the store's tables, or upgrade them to this evalhub's schema. Writers do it on first use; on a
    team database whose CI role may only insert, the owner runs this once per evalhub upgrade."""
    from evalhub.store import migrate

    target = shared.resolve_db(db)
    print(f"the store {target} is at schema {migrate(target)}")
