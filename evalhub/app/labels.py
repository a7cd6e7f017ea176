"""Short, unambiguous names for models and golden sets: folder or file names, with a short id added only
when two different things share a name."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from evalhub.store._leaderboard import StoredRun


@dataclass(frozen=True)
class Labels:
    models: dict[str, str]        # model_id -> label
    golden_sets: dict[str, str]   # golden set key -> label
    golden_key: dict[tuple[str, str], str]  # (run_id, golden file as stored) -> golden set key


def _unique(names: dict[str, str]) -> dict[str, str]:
    by_name: dict[str, list[str]] = defaultdict(list)
    for key, name in names.items():
        by_name[name].append(key)
    return {key: name if len(by_name[name]) == 1 else f"{name} ({key[-8:]})" for key, name in names.items()}


def run_labels(runs: list[StoredRun]) -> Labels:
    """Golden sets are identified by content (the sha256 the run recorded), so the same file reached by
    another path, or copied elsewhere, is the same golden set; models by their store id."""
    models = {}
    for run in runs:
        for model in (run.base, run.tuned):
            models[model.model_id] = Path(model.path).name or model.path
    golden_key, golden_names = {}, {}
    for run in runs:
        for path in run.golden:
            key = run.input_hashes.get(path) or path
            golden_key[(run.run_id, path)] = key
            golden_names[key] = Path(path).name
    return Labels(models=_unique(models), golden_sets=_unique(golden_names), golden_key=golden_key)
