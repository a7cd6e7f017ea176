"""How the candidate was trained, stored with the run: an adapter from `evalhub train` carries training.json
and curves.csv beside its weights."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def store_training_curves(tuned_ref, db) -> None:
    """Store the adapter's training record and curves keyed by the adapter's hash, so the app can plot how the
    compared adapter was trained."""
    from evalhub.store import save_training_run

    folder = Path(tuned_ref.path)
    if tuned_ref.kind != "adapter" or not (folder / "training.json").is_file() or not (folder / "curves.csv").is_file():
        return
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    with (folder / "curves.csv").open(encoding="utf-8") as handle:
        curves = [{"step": int(row["step"]), "split": row["split"], "loss": float(row["loss"])}
                  for row in csv.DictReader(handle) if row.get("loss")]
    save_training_run(tuned_ref.adapter_hash, tuned_ref.path, record.get("method", "sft"), record, curves, db)
