"""Short, unambiguous names for models and golden sets: folder or file names, with a short id added only
when two different things share a name."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from evalhub.store import StoredModel, StoredRun


@dataclass(frozen=True)
class Labels:
    models: dict[str, str]        # model_id -> label
    golden_sets: dict[str, str]   # golden set key -> label


def golden_key(run: StoredRun, path: str) -> str:
    """Golden sets are identified by content (the sha256 the run recorded), so the same file reached by
    another path, or copied elsewhere, is the same golden set."""
    return run.input_hashes.get(path) or path


def _unique(names: dict[str, str]) -> dict[str, str]:
    by_name: dict[str, list[str]] = defaultdict(list)
    for key, name in names.items():
        by_name[name].append(key)
    return {key: name if len(by_name[name]) == 1 else f"{name} ({key[-8:]})" for key, name in names.items()}


def store_labels(models: dict[str, StoredModel], golden_sets: dict[str, str]) -> Labels:
    """Labels for every model (by store id) and golden set (key -> a path it was read from) of a store."""
    return Labels(models=_unique({model_id: Path(m.path).name or m.path for model_id, m in models.items()}),
                  golden_sets=_unique({key: Path(path).name for key, path in golden_sets.items()}))


def run_labels(runs: list[StoredRun]) -> Labels:
    """Labels for the models and golden sets of `runs`."""
    models = {m.model_id: m for run in runs for m in (run.base, run.tuned)}
    golden = {golden_key(run, path): path for run in runs for path in run.golden}
    return store_labels(models, golden)
