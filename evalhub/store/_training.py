"""Writing a training run (its training.json) and its loss curves, keyed by the adapter's hash so compare
runs of that adapter can be joined to how it was trained."""

from __future__ import annotations

import json

from evalhub.store._connect import write_connection
from evalhub.store._location import StoreArg


def save_training_run(adapter_hash: str, path: str, method: str, config: dict, curves: list[dict],
                      db: StoreArg = None) -> None:
    """Write one training run and its curve points (dicts with step, split, loss) in one transaction.

    Training with one seed reproduces the same adapter bytes, hence the same hash: a rerun replaces the
    earlier record instead of failing on the key.
    """
    with write_connection(db) as con:
        # Concurrent compares of one adapter (CI runners sharing a database) each record its training: they
        # take turns, so the second replaces the first's rows instead of colliding with them.
        con.lock(f"training_runs:{adapter_hash}")
        con.execute("DELETE FROM training_curves WHERE adapter_hash = ?", [adapter_hash])
        con.execute("DELETE FROM training_runs WHERE adapter_hash = ?", [adapter_hash])
        con.execute("INSERT INTO training_runs (adapter_hash, path, method, config) VALUES (?, ?, ?, ?)",
                    [adapter_hash, path, method, json.dumps(config)])
        if curves:
            con.executemany(
                "INSERT INTO training_curves (adapter_hash, step, split, loss) VALUES (?, ?, ?, ?)",
                [[adapter_hash, int(p["step"]), p["split"], float(p["loss"])] for p in curves],
            )
