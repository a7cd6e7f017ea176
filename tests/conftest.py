"""Shared fixtures: the toy world is built once per session (and cached across sessions by content hash)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Nothing may come from a model hub: every test runs on the offline toy world.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def toy_world() -> Path:
    from evalhub.toy import build_toy_world

    return build_toy_world(seed=0, quiet=True)


@pytest.fixture(scope="session")
def toy_manifest(toy_world: Path) -> dict:
    return json.loads((toy_world / "manifest.json").read_text())


@pytest.fixture(scope="session")
def toy_adapter(toy_world: Path, toy_manifest: dict) -> Path:
    """A LoRA adapter trained briefly on the toy domain, cached beside the toy world across sessions."""
    from trainers.sft import SFTSettings, train_sft

    out = toy_world.parent / f"{toy_world.name}-adapters" / "sft-60"
    if not (out / "adapter_config.json").exists():
        train_sft(SFTSettings(base=toy_world / "base", data=toy_world / toy_manifest["sft"], output=out, max_steps=60))
    return out
